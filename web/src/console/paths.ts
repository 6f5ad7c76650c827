// Paths: how a machine's traffic to a peer goes, as its agent reports it (issue 21 part 4):
// per live login on the Sessions page, and per peer in the Machines page's "Paths…" dialog
// (GET /nodes/{id}/paths, asked again every 2 s while it shows).

import { call, message, type NetworkNode } from "./api.js";
import { h, headedTable, modal, replace } from "./dom.js";

/** A path as the API gives it: direct to an endpoint, or relayed through a region. */
export interface Path {
  direct?: string;
  region?: string;
  rttMs?: number;
}

/** One peer's path of GET /nodes/{id}/paths. */
interface PeerPath extends Path {
  peer: string;
  machine?: { id: number; name: string };
}

/** pathText shows a path as `tsconnect status` does: "direct IP:PORT 0.4ms" or
 * "relay DERP(tsc)"; "" from an agent that does not report it. */
export function pathText(p: Path | undefined): string {
  if (!p) return "";
  const rtt = p.rttMs ? ` ${p.rttMs < 10 ? p.rttMs.toFixed(1) : Math.round(p.rttMs)}ms` : "";
  if (p.direct) return `direct ${p.direct}${rtt}`;
  return `relay DERP(${p.region || "?"})${rtt}`;
}

/** How often the dialog asks again. */
const refreshEvery = 2000;

/** pathsDialog shows machine m's paths to the peers it exchanged traffic with in the last
 * 30 s, until closed. */
export async function pathsDialog(m: NetworkNode): Promise<void> {
  const body = h("tbody");
  const empty = h(
    "p",
    { class: "empty", hidden: true },
    "No traffic with a peer in the last 30 s (an agent without --udp-port does not report its paths).",
  );
  const error = h("p", { class: "error", role: "alert", hidden: true });
  let timer: number | undefined;
  let open = true;
  const load = async () => {
    try {
      const r = await call<{ paths: PeerPath[] }>("GET", `/nodes/${m.id}/paths`);
      error.hidden = true;
      replace(
        body,
        ...r.paths.map((p) =>
          h(
            "tr",
            { "data-peer": p.peer },
            h("td", { class: "peer" }, p.machine ? `${p.machine.name} (${p.peer})` : p.peer),
            h("td", { class: "path" }, pathText(p)),
          ),
        ),
      );
      empty.hidden = r.paths.length > 0;
    } catch (e) {
      error.hidden = false;
      error.textContent = message(e);
    }
    if (open) timer = window.setTimeout(() => void load(), refreshEvery);
  };
  void load();
  await modal<void>(
    `Paths of ${m.name}`,
    (close) => [
      h("h2", null, "Paths of ", h("span", { class: "name" }, m.name)),
      h("p", { class: "help" }, "How its traffic to each peer goes, as its agent last reported."),
      error,
      headedTable(["Peer", "Path"], body, { class: "peer-paths" }),
      empty,
      h("div", { class: "buttons" }, h("button", { type: "button", on: { click: () => close() } }, "Close")),
    ],
    undefined,
  );
  open = false;
  clearTimeout(timer);
}
