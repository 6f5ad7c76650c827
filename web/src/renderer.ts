// The terminal renderer a page asks for in its URL (?renderer=dom|webgl|auto), for the demo
// page and the console alike; anything else (or nothing) is openTerminal's default, "auto".

import type { TerminalRenderer } from "../../npm/types/terminal.js";

/** The renderer named by ?renderer= in this page's URL, else "auto". */
export function rendererParam(): TerminalRenderer {
  const r = new URLSearchParams(location.search).get("renderer");
  return r === "dom" || r === "webgl" ? r : "auto";
}
