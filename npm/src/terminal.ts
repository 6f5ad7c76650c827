// openTerminal: an xterm.js terminal that fits its container and runs an SSH session.
// @xterm/xterm and @xterm/addon-fit are peer dependencies, left external by the build.

import { FitAddon } from "@xterm/addon-fit";
import { Terminal } from "@xterm/xterm";
import type { IPN, IPNError } from "../types/index.js";
import type * as API from "../types/terminal.js";
import type { TerminalResult, TerminalSession, TerminalTarget } from "../types/terminal.js";
import { ipnError } from "./errors.js";

function parseTarget(target: TerminalTarget): { host: string; user: string } {
  if (typeof target !== "string") return target;
  const at = target.lastIndexOf("@");
  if (at <= 0 || at === target.length - 1) throw ipnError("bad_request", `openTerminal: target ${JSON.stringify(target)} is not user@host`);
  return { user: target.slice(0, at), host: target.slice(at + 1) };
}

export const openTerminal: typeof API.openTerminal = (ipn: IPN, target, options): TerminalSession => {
  const { host, user } = parseTarget(target);
  const term = new Terminal({ cursorBlink: true, scrollback: 5000, ...options.terminalOptions });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(options.container);
  fit.fit();

  let settle: (r: TerminalResult) => void = () => {};
  const done = new Promise<TerminalResult>((resolve) => (settle = resolve));

  const session = ipn.ssh(host, user, {
    rows: term.rows,
    cols: term.cols,
    onData: (data) => term.write(data),
    onBanner: (text, url) => {
      term.write(text.replace(/\r?\n/g, "\r\n"));
      options.onBanner?.(text, url);
    },
    onConnectionProgress: (text) => options.onConnectionProgress?.(text),
    onConnected: () => {
      term.focus();
      options.onConnected?.();
    },
    onDone: (exitCode: number, error?: IPNError) => {
      options.onDone?.(exitCode, error);
      settle(error ? { exitCode, error } : { exitCode });
    },
  });

  const encodeBinary = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
  const listeners = [
    term.onData((s) => session.write(s)),
    term.onBinary((s) => session.write(encodeBinary(s))),
    term.onResize(({ rows, cols }) => session.resize(rows, cols)),
  ];
  const observer = new ResizeObserver(() => {
    // Fitting a hidden container would collapse the terminal to its minimum size.
    if (options.container.clientWidth > 0 && options.container.clientHeight > 0) fit.fit();
  });
  observer.observe(options.container);

  return {
    terminal: term,
    done,
    close: () => session.close(),
    dispose: () => {
      session.close();
      observer.disconnect();
      for (const l of listeners) l.dispose();
      term.dispose();
    },
  };
};
