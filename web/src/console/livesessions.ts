// The Sessions page: the live SSH logins on the network's machines as their agents report
// them (GET /sessions, every 2 s while the page shows): the user's own, or for an admin
// everyone's, each with an End button that makes the machine's agent cut it at once.

import { call, message, type User } from "./api.js";
import { ago, bytes, confirmDialog, h, headedTable, localTime, replace } from "./dom.js";
import { pathText, type Path } from "./paths.js";

/** One login of GET /sessions. */
interface LiveSession {
  machine: { id: number; name: string };
  remote: string;
  from?: { id: number; name: string };
  user?: { id: number; email: string };
  localUser: string;
  started: string;
  channels: number;
  bytesIn: number;
  bytesOut: number;
  /** How the machine's traffic to the client goes, as its agent last reported. */
  path?: Path;
}

/** How often the page asks again. */
const refreshEvery = 2000;

/** The Sessions page. */
export class LiveSessionsPage {
  readonly el: HTMLElement;
  #body = h("tbody");
  #empty = h("p", { class: "empty", hidden: true });
  #error = h("p", { class: "error", role: "alert", hidden: true });
  #timer: number | undefined;

  constructor(private readonly me: User) {
    const admin = me.role === "admin";
    this.#empty.textContent = admin ? "No one is logged in over SSH." : "You have no live SSH sessions.";
    this.el = h(
      "section",
      { class: "live-sessions", "aria-labelledby": "live-h" },
      h("h1", { id: "live-h" }, "Sessions"),
      h(
        "p",
        { class: "help" },
        admin
          ? "Every live SSH login on the network's machines. End cuts one at once, telling its user who ended it."
          : "Your live SSH logins.",
      ),
      this.#error,
      headedTable(
        ["Machine", "Login", "From", "Started", "Traffic", "Path", admin ? h("span", { class: "visually-hidden" }, "Actions") : null],
        this.#body,
      ),
      this.#empty,
    );
    void this.#load();
  }

  async #load() {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    try {
      const r = await call<{ sessions: LiveSession[] }>("GET", "/sessions");
      this.#error.hidden = true;
      replace(this.#body, ...r.sessions.map((s) => this.#row(s)));
      this.#empty.hidden = r.sessions.length > 0;
    } catch (e) {
      this.#error.hidden = false;
      this.#error.textContent = message(e);
    }
    // Asks again while the page shows; a page navigated away from stops.
    this.#timer = window.setTimeout(() => {
      if (this.el.isConnected) void this.#load();
    }, refreshEvery);
  }

  #row(s: LiveSession): HTMLTableRowElement {
    const label = `${s.localUser}@${s.machine.name}`;
    const from = [s.user?.email, s.from ? `on ${s.from.name}` : undefined, `(${s.remote})`].filter(Boolean).join(" ");
    return h(
      "tr",
      { "data-session": `${s.machine.id}/${s.remote}` },
      h("td", { class: "machine" }, s.machine.name),
      h("td", { class: "login" }, s.localUser),
      h("td", { class: "from" }, from),
      h("td", { class: "started", title: localTime(s.started) }, ago(s.started)),
      h("td", { class: "traffic" }, `${bytes(s.bytesIn)} in, ${bytes(s.bytesOut)} out`),
      h("td", { class: "path" }, pathText(s.path)),
      this.me.role === "admin"
        ? h(
            "td",
            null,
            h(
              "button",
              { type: "button", class: "danger", "aria-label": `End ${label} from ${from}`, on: { click: () => void this.#end(s, label) } },
              "End",
            ),
          )
        : null,
    );
  }

  async #end(s: LiveSession, label: string) {
    if (!(await confirmDialog(`End the SSH session ${label}? Its user sees that you ended it.`, "End session"))) return;
    try {
      await call<void>("DELETE", `/sessions/${s.machine.id}/${encodeURIComponent(s.remote)}`);
    } catch (e) {
      this.#error.hidden = false;
      this.#error.textContent = message(e);
    }
    await this.#load();
  }
}
