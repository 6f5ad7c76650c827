// The demo page: it trades the token in its URL fragment for an ephemeral auth key, joins
// the network in a Worker and opens an SSH terminal on the demo host.
// Stable hooks for tests: #status (text, data-state), #error (text, data-code), #terminal.

import "@xterm/xterm/css/xterm.css";
import "./style.css";
import { createIPN, isIPNError } from "../../npm/src/index.js";
import { openTerminal } from "../../npm/src/terminal.js";
import type { IPN } from "../../npm/types/index.js";
import { setupFiles } from "./files.js";
import { rendererParam } from "./renderer.js";

/** The hashed URL of tsconnect.wasm, relative to the page; injected by esbuild.config.js. */
declare const __TSCONNECT_WASM_URL__: string;
declare const __TSCONNECT_FILES_WASM_URL__: string;

type PageState = "loading" | "connecting" | "connected" | "done" | "error";

const statusEl = document.getElementById("status") as HTMLElement;
const errorEl = document.getElementById("error") as HTMLElement;
const terminalEl = document.getElementById("terminal") as HTMLElement;

function setStatus(state: PageState, text: string) {
  statusEl.textContent = text;
  statusEl.dataset.state = state;
  document.body.dataset.state = state;
}

/** What the user should know about each failure. */
function explain(code: string, message: string, ctx: { controlURL?: string; host?: string }): string {
  const control = ctx.controlURL ?? "the control server";
  switch (code) {
    case "no_token":
      return "This page needs the exact URL that `tsconnect demo` printed: it carries a one-time token after #token=.";
    case "unauthorized":
      return `The demo refused this page's token: ${message}`;
    case "token_used":
      return "This page's one-time token was already used (each URL that `tsconnect demo` prints opens one session; a reload cannot reuse it). Open the newest URL the demo printed in its terminal, or restart `tsconnect demo`.";
    case "invalid_key":
      return "Bad auth key: control does not know this key.";
    case "expired_key":
      return "Bad auth key: it has expired. Reload the page to get a new one.";
    case "used_key":
      return "Bad auth key: this single-use key was already used. Reload the page to get a new one.";
    case "revoked_key":
      return "Bad auth key: an admin revoked it.";
    case "control_unreachable":
      return `Control unreachable: cannot connect to ${control}.`;
    case "unsupported_version":
      return `This page and ${control} share no control protocol version: ${message}`;
    case "relay_unreachable":
      return "Relay unreachable: registered, but the DERP relay's WebSocket did not connect.";
    case "host_unreachable":
      return `Host unreachable: no answer from ${ctx.host ?? "the host"} on port 22 through the overlay.`;
    case "unknown_host":
      return `Unknown host: ${ctx.host ?? "the host"} is not in this node's network map.`;
    case "host_key_mismatch":
      return `Host key mismatch: ${ctx.host ?? "the host"} presented a key the network map does not list. Not connecting.`;
    case "wasm_load_failed":
      return "Could not load tsconnect.wasm (was the front end built with `npm run build`?).";
    default:
      return `Failed (${code}).`;
  }
}

function fail(code: string, message: string, ctx: { controlURL?: string; host?: string } = {}) {
  setStatus("error", explain(code, message, ctx));
  errorEl.hidden = false;
  errorEl.dataset.code = code;
  errorEl.textContent = `${explain(code, message, ctx)}\n\nDetails: ${message}`;
}

interface DemoSession {
  authKey: string;
  controlURL: string;
  host: string;
  user: string;
}

async function mintSession(token: string): Promise<DemoSession> {
  const resp = await fetch("/api/demo/session", {
    method: "POST",
    headers: { Authorization: `Bearer ${token}` },
    cache: "no-store",
  });
  const body = (await resp.json().catch(() => ({}))) as Partial<DemoSession> & { error?: string; code?: string };
  if (!resp.ok) {
    const code = resp.status === 410 && body.code === "token_used" ? "token_used" : resp.status === 401 ? "unauthorized" : "internal";
    throw Object.assign(new Error(body.error ?? `HTTP ${resp.status}`), { code });
  }
  return body as DemoSession;
}

async function main() {
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (!token) {
    fail("no_token", "no #token= in the page URL");
    return;
  }
  setStatus("connecting", "Getting a key…");
  let s: DemoSession;
  try {
    s = await mintSession(token);
  } catch (e) {
    fail(isIPNError(e) ? e.code : "internal", e instanceof Error ? e.message : String(e));
    return;
  }

  setStatus("connecting", "Loading tsconnect…");
  let ipn: IPN;
  try {
    ipn = await createIPN({
      controlURL: s.controlURL,
      authKey: s.authKey,
      hostname: "browser-demo",
      wasmURL: new URL(__TSCONNECT_WASM_URL__, location.href),
      filesWasmURL: new URL(__TSCONNECT_FILES_WASM_URL__, location.href),
      logger: (line) => console.debug("tsconnect:", line),
    });
  } catch (e) {
    fail(isIPNError(e) ? e.code : "internal", e instanceof Error ? e.message : String(e), s);
    return;
  }
  addEventListener("pagehide", () => void ipn.logout().catch(() => {}));

  ipn.run({
    notifyState: (state) => {
      if (state === "starting") setStatus("connecting", "Joining the network…");
    },
    notifyPanicRecover: (msg) => fail("panic", msg, s),
  });
  try {
    await ipn.login();
  } catch (e) {
    fail(isIPNError(e) ? e.code : "internal", e instanceof Error ? e.message : String(e), s);
    return;
  }

  const term = openTerminal(
    ipn,
    { host: s.host, user: s.user },
    {
      container: terminalEl,
      renderer: rendererParam(),
      onConnectionProgress: (text) => setStatus("connecting", text),
      onConnected: () => setStatus("connected", `Connected: ${s.user}@${s.host}`),
      onBanner: (_text, url) => {
        // url is set only for control's own check page (the banner rule, npm/src/banner.ts).
        if (url) window.open(url, "_blank", "noopener");
      },
      onDone: (exitCode, error) => {
        if (error && error.code !== "closed") fail(error.code, error.message, s);
        else setStatus("done", `Session ended (exit code ${exitCode}).`);
        // The page's one session is over: the node leaves the network and its Worker (the Go
        // runtime, its memory) ends, rather than lingering until the tab closes.
        void ipn
          .logout()
          .catch(() => {})
          .finally(() => ipn.dispose());
      },
    },
  );
  setupFiles(term.files, terminalEl, statusEl.parentElement as HTMLElement);
}

void main();
