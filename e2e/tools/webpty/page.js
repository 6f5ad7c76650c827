// The reference terminal's page: the project's xterm.js (same version and options as
// npm/src/terminal.ts: DOM renderer, or WebGL with ?renderer=webgl; cursorBlink, scrollback
// 5000, fit, Unicode 11 widths) over a WebSocket to webpty's PTY. With ?local=1 it opens no WebSocket: window.webpty.writeLocal then measures
// xterm.js alone writing bytes it fetches.
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import { Unicode11Addon } from "@xterm/addon-unicode11";
import { WebglAddon } from "@xterm/addon-webgl";
import "@xterm/xterm/css/xterm.css";

const term = new Terminal({ cursorBlink: true, scrollback: 5000, allowProposedApi: true });
const fit = new FitAddon();
term.loadAddon(fit);
term.loadAddon(new Unicode11Addon());
term.unicode.activeVersion = "11";
const el = document.getElementById("term");
term.open(el);
const params = new URLSearchParams(location.search);
// ?renderer=webgl draws with @xterm/addon-webgl (even in software), as openTerminal's "webgl".
if (params.get("renderer") === "webgl") {
  const webgl = new WebglAddon();
  webgl.onContextLoss(() => webgl.dispose());
  term.loadAddon(webgl);
}
// Test hook, as npm/src/terminal.ts: the benchmarks' probe watches what the terminal draws.
globalThis.__tsconnectTerminalHook?.(term);
fit.fit();
addEventListener("resize", () => fit.fit());

/**
 * Writes the bytes at url to the terminal in chunks of chunk bytes (all queued at once, as a
 * program's output would be) and resolves with the milliseconds until the last one is parsed
 * and drawn.
 */
async function writeLocal(url, chunk = 65536) {
  const data = new Uint8Array(await (await fetch(url)).arrayBuffer());
  const t0 = performance.now();
  await new Promise((resolve) => {
    for (let i = 0; i < data.length; i += chunk) {
      const last = i + chunk >= data.length;
      term.write(data.subarray(i, i + chunk), last ? resolve : undefined);
    }
  });
  await new Promise((r) => requestAnimationFrame(() => r(undefined)));
  return { ms: performance.now() - t0, bytes: data.length };
}

window.webpty = { term, writeLocal };

if (!params.has("local")) {
  const ws = new WebSocket(`ws://${location.host}/pty?t=${encodeURIComponent(params.get("t") ?? "")}`);
  ws.binaryType = "arraybuffer";
  const enc = new TextEncoder();
  const sendSize = () => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify({ cols: term.cols, rows: term.rows }));
  ws.onopen = sendSize;
  ws.onmessage = (e) => term.write(new Uint8Array(e.data));
  ws.onclose = () => term.write("\r\n[closed]\r\n");
  term.onResize(sendSize);
  term.onData((d) => ws.readyState === WebSocket.OPEN && ws.send(enc.encode(d)));
  term.onBinary((d) => ws.readyState === WebSocket.OPEN && ws.send(Uint8Array.from(d, (c) => c.charCodeAt(0))));
  term.focus();
}
