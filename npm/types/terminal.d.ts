/**
 * @tsconnect/connect/terminal — an SSH session drawn by xterm.js (peer dependencies
 * `@xterm/xterm` and `@xterm/addon-fit`; include `@xterm/xterm/css/xterm.css` in the page).
 */
import type { ITerminalOptions, Terminal } from "@xterm/xterm";
import type { IPN, IPNError } from "./index.js";

/** Whom to log in as, where: `{host, user}` or `"user@host"`. */
export type TerminalTarget = string | { host: string; user: string };

/** Options of {@link openTerminal}. */
export interface OpenTerminalOptions {
  /** Element the terminal fills; it is refitted (and the PTY resized) whenever the element's size changes. */
  container: HTMLElement;
  /** Options for the xterm.js Terminal (font, theme, ...). */
  terminalOptions?: ITerminalOptions;
  /** Receives connection steps. */
  onConnectionProgress?(text: string): void;
  /** Receives authentication banners (they are also written into the terminal). */
  onBanner?(text: string, url?: string): void;
  /** Called once the shell runs. */
  onConnected?(): void;
  /** Called once at the end, as {@link SSHOptions.onDone}. */
  onDone?(exitCode: number, error?: IPNError): void;
}

/** How a terminal session ended. */
export interface TerminalResult {
  /** Exit code of the remote shell, or -1 when it ended without one. */
  exitCode: number;
  /** Why the session failed or ended without an exit code. */
  error?: IPNError;
}

/** A terminal showing an SSH session. */
export interface TerminalSession {
  /** The xterm.js terminal. */
  readonly terminal: Terminal;
  /** Settles (never rejects) when the session ends. */
  readonly done: Promise<TerminalResult>;
  /** Ends the SSH session; the terminal stays on screen. */
  close(): void;
  /** Ends the session and removes the terminal and its listeners. */
  dispose(): void;
}

/** Opens an xterm.js terminal in `options.container` running an SSH session through `ipn`. */
export function openTerminal(ipn: IPN, target: TerminalTarget, options: OpenTerminalOptions): TerminalSession;
