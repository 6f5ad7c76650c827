// VNC sessions of the console: an IPN of its own (a VNC launch's single-use key) dials the
// machine's overlay port 5900 (its agent's --vnc forward), and noVNC (vnc.ts, a chunk loaded
// only now) draws it into a child window (termPage, a page without scripts).

import { createIPN } from "../../../npm/src/index.js";
import type { IPN } from "../../../npm/types/index.js";
import { call, message, type NetworkNode, type VNCLaunch } from "./api.js";
import { termPage } from "./sessions.js";

declare const __TSCONNECT_WASM_URL__: string;

/** The overlay port of a machine's VNC forward (agent.VNCPort). */
const vncPort = 5900;

/**
 * Opens a VNC session to m; call it synchronously from the click handler so that pop-up
 * blockers allow the window.
 */
export function openVNC(m: NetworkNode): void {
  const win = window.open(termPage, "_blank", "popup,width=1024,height=768");
  void run(m, win);
}

async function run(m: NetworkNode, win: Window | null): Promise<void> {
  if (!win) {
    alert(`The VNC window to ${m.name} was blocked: allow pop-ups for this site.`);
    return;
  }
  const draw = import("./vnc.js");
  const doc = await childDoc(win);
  const status = (text: string, state: string) => {
    const el = doc?.getElementById("status");
    if (el) {
      el.textContent = text;
      el.dataset.state = state;
    }
  };
  if (doc) doc.title = `VNC: ${m.name}`;
  let ipn: IPN | undefined;
  const end = () => void ipn?.logout().catch(() => ipn?.dispose());
  win.addEventListener("pagehide", end);
  try {
    status(`Connecting to ${m.name}…`, "connecting");
    const grant = await call<VNCLaunch>("POST", `/nodes/${m.id}/vnc-launch`);
    ipn = await createIPN({ controlURL: grant.controlURL, authKey: grant.authKey, hostname: "vnc", wasmURL: __TSCONNECT_WASM_URL__ });
    ipn.run({});
    await ipn.login();
    const stream = await ipn.dial(grant.host, vncPort);
    const screen = doc?.getElementById("terminal");
    if (!screen) {
      stream.close();
      throw new Error("the VNC window was closed");
    }
    screen.setAttribute("aria-label", `VNC screen of ${m.name}`);
    (await draw).drawVNC(screen, stream, {
      onConnect: () => status(`VNC: ${m.name}`, "connected"),
      onDisconnect: () => {
        status("Disconnected.", "ended");
        end();
      },
      onSecurityFailure: () => status("The VNC server refused the connection.", "failed"),
    });
  } catch (e) {
    status(message(e), "failed");
    end();
  }
}

/** Resolves with the child's document once termPage has loaded in it (undefined if it closed). */
async function childDoc(win: Window): Promise<Document | undefined> {
  for (let i = 0; i < 200; i++) {
    try {
      if (win.closed) return undefined;
      if (win.location.pathname === termPage && win.document.readyState === "complete") return win.document;
    } catch {
      return undefined;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return undefined;
}
