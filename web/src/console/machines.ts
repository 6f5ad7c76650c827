// The Machines page: one page of the list at a time, searched and paged by the server (so a
// network of 10,000 machines costs the page what 50 do), kept live over the events WebSocket;
// "SSH…" with its user picker, and the admin actions (tags, expire, delete).

import { ApiError, call, message, type NetworkNode, type SSHUser, type User } from "./api.js";
import { ago, confirmDialog, h, localTime, modal, replace } from "./dom.js";
import { attachCommands, attachTool, ownerText, type Sessions } from "./sessions.js";
import { pathsDialog } from "./paths.js";
import { linkURL } from "./sshlink.js";
import { openVNC } from "./vncsession.js";

/** How many machines one page of the list shows. */
const PAGE_SIZE = 50;

/** What GET /nodes answers for a page. */
interface NodePage {
  nodes: NetworkNode[];
  total?: number;
  next?: number;
}

/** A message of GET /events?changes=1: which machines changed, were added or deleted. */
interface NodeChanges {
  type: string;
  changed?: number[];
  removed?: number[];
  total?: number;
}

/** The Machines page and its live feed. */
export class MachinesPage {
  readonly el: HTMLElement;
  #body = h("tbody");
  #status = h("p", { class: "feed", role: "status" }, "Loading…");
  #error = h("p", { class: "error", role: "alert", hidden: true });
  #rows = new Map<number, { json: string; tr: HTMLTableRowElement }>();
  #machines: NetworkNode[] = [];
  #search = h("input", {
    type: "search",
    name: "q",
    placeholder: "Search name, owner, tag, address, OS",
    "aria-label": "Search machines",
    size: 36,
    on: { input: () => this.#searchSoon() },
  });
  #range = h("span", { class: "page-range", "aria-live": "polite" });
  #empty = h("p", { class: "empty", hidden: true });
  #prev = h("button", { type: "button", disabled: true, on: { click: () => this.#turn(-1) } }, "Previous");
  #next = h("button", { type: "button", disabled: true, on: { click: () => this.#turn(1) } }, "Next");
  /** The search the page shows, the after= of this page and of the pages before it. */
  #q = "";
  #after = 0;
  #back: number[] = [];
  #nextAfter = 0;
  #total = 0;
  #searchTimer: ReturnType<typeof setTimeout> | undefined;
  /** The load in flight (one at a time) and whether another must follow it (a change, a page turn or a search came during it). */
  #loading: Promise<void> | undefined;
  #again = false;
  #ws: WebSocket | undefined;
  #retry = 0;
  #stopped = false;
  /** Keeps the "lost control … ago" of offline rows current between updates. */
  #ages = setInterval(() => this.#refreshAges(), 30_000);

  constructor(
    private readonly me: User,
    private readonly sessions: Sessions,
  ) {
    this.el = h(
      "section",
      { "aria-labelledby": "machines-h" },
      h("h1", { id: "machines-h" }, "Machines"),
      this.#status,
      h(
        "div",
        { class: "list-controls" },
        this.#search,
        h("nav", { "aria-label": "Pages of machines" }, this.#prev, this.#range, this.#next),
      ),
      this.#error,
      h(
        "table",
        { class: "machines" },
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            h("th", { scope: "col" }, "Machine"),
            h("th", { scope: "col" }, "Addresses"),
            h("th", { scope: "col" }, "OS"),
            h("th", { scope: "col" }, "Status"),
            h("th", { scope: "col" }, "SSH"),
            h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions")),
          ),
        ),
        this.#body,
      ),
      this.#empty,
    );
    void this.#load();
    this.#connect();
  }

  /** Stops the live feed (logout). */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#ages);
    clearTimeout(this.#searchTimer);
    this.#ws?.close();
  }

  /** Refetches the page shown; a change during a fetch fetches once more after it. */
  #load(): Promise<void> {
    if (this.#loading) {
      this.#again = true;
      return this.#loading;
    }
    this.#loading = (async () => {
      do {
        this.#again = false;
        await this.#fetchPage();
      } while (this.#again && !this.#stopped);
      this.#loading = undefined;
    })();
    return this.#loading;
  }

  async #fetchPage() {
    const params = new URLSearchParams({ limit: String(PAGE_SIZE), after: String(this.#after) });
    if (this.#q) params.set("q", this.#q);
    try {
      const r = await call<NodePage>("GET", `/nodes?${params}`);
      if (!r.nodes.length && this.#back.length) {
        // The page emptied (deletions): show the one before it.
        this.#after = this.#back.pop() ?? 0;
        this.#again = true;
        return;
      }
      this.#nextAfter = r.next ?? 0;
      this.#total = r.total ?? r.nodes.length;
      this.#render(r.nodes);
    } catch (e) {
      this.#showError(message(e));
    }
  }

  #searchSoon() {
    clearTimeout(this.#searchTimer);
    this.#searchTimer = setTimeout(() => {
      const q = this.#search.value.trim();
      if (q === this.#q) return;
      this.#q = q;
      this.#after = 0;
      this.#back = [];
      void this.#load();
    }, 250);
  }

  #turn(dir: 1 | -1) {
    if (dir > 0) {
      if (!this.#nextAfter) return;
      this.#back.push(this.#after);
      this.#after = this.#nextAfter;
    } else {
      if (!this.#back.length) return;
      this.#after = this.#back.pop() ?? 0;
    }
    void this.#load();
  }

  /**
   * Refetches the page when a change can touch it: a machine on it changed or went away,
   * the total moved, a search is on (a change may bring a machine in), or this is the last
   * page and a machine changed that it does not show (a new one lands there).
   */
  #changed(msg: NodeChanges) {
    const changed = msg.changed ?? [];
    const ids = [...changed, ...(msg.removed ?? [])];
    if (
      ids.some((id) => this.#rows.has(id)) ||
      (msg.total !== undefined && msg.total !== this.#total) ||
      (this.#q !== "" && ids.length > 0) ||
      (this.#nextAfter === 0 && changed.length > 0)
    )
      void this.#load();
  }

  #connect() {
    if (this.#stopped) return;
    const url = new URL("/api/v1/events?changes=1", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(url);
    this.#ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      if (this.#retry > 0) void this.#load(); // missed changes while away
      this.#retry = 0;
      this.#status.textContent = "Live";
      this.#status.dataset.live = "true";
    };
    ws.onmessage = (ev) => {
      try {
        const msg = JSON.parse(String(ev.data)) as NodeChanges;
        if (msg.type === "changes") this.#changed(msg);
      } catch {
        // A message we do not understand changes nothing.
      }
    };
    ws.onclose = () => {
      if (this.#stopped) return;
      this.#status.dataset.live = "false";
      this.#status.textContent = opened ? "Live updates interrupted; reconnecting…" : "Live updates unavailable; retrying…";
      const delay = Math.min(10_000, 500 * 2 ** this.#retry++);
      setTimeout(() => this.#connect(), delay);
    };
  }

  #refreshAges() {
    for (const el of this.#body.querySelectorAll<HTMLElement>(".offline[data-since]")) {
      el.textContent = lostControlText(el.dataset.since ?? null);
    }
  }

  #showError(text: string) {
    this.#error.hidden = false;
    this.#error.textContent = text;
  }

  #render(machines: NetworkNode[]) {
    this.#error.hidden = true;
    this.#machines = machines;
    const seen = new Set<number>();
    let prev: Element | null = null;
    for (const m of machines) {
      seen.add(m.id);
      const json = JSON.stringify(m);
      let row = this.#rows.get(m.id);
      if (!row || row.json !== json) {
        const tr = this.#row(m);
        if (row) row.tr.replaceWith(tr);
        row = { json, tr };
        this.#rows.set(m.id, row);
      }
      const want: Element | null = prev ? prev.nextElementSibling : this.#body.firstElementChild;
      if (want !== row.tr) this.#body.insertBefore(row.tr, want);
      prev = row.tr;
    }
    for (const [id, row] of this.#rows) {
      if (!seen.has(id)) {
        row.tr.remove();
        this.#rows.delete(id);
      }
    }
    const first = machines.length ? this.#back.length * PAGE_SIZE + 1 : 0;
    this.#range.textContent = this.#q
      ? `${first}–${first + machines.length - (first ? 1 : 0)} of ${this.#total} matching`
      : `${first}–${first + machines.length - (first ? 1 : 0)} of ${this.#total}`;
    this.#prev.disabled = this.#back.length === 0;
    this.#next.disabled = this.#nextAfter === 0;
    if (!machines.length && !this.#q) this.#status.textContent = "No machines yet: register one with `tsconnect up --auth-key …`.";
    this.#empty.hidden = machines.length > 0 || !this.#q;
    this.#empty.textContent = `No machines match “${this.#q}”.`;
  }

  #row(m: NetworkNode): HTMLTableRowElement {
    const admin = this.me.role === "admin";
    const canSSH = m.ssh && m.online && !m.expired && !m.keyExpired;
    return h(
      "tr",
      { "data-machine": m.name, "data-id": m.id },
      h(
        "td",
        null,
        h("div", { class: "name" }, m.name),
        h(
          "div",
          { class: m.tags.length ? "tags" : "owner" },
          m.tags.length ? m.tags.map((t) => h("span", { class: "tag" }, t)) : ownerText(m),
        ),
        m.ephemeral ? h("span", { class: "badge" }, "ephemeral") : null,
      ),
      h(
        "td",
        { class: "addrs" },
        m.addresses.map((a) => h("div", null, a)),
      ),
      h("td", null, m.os),
      h(
        "td",
        null,
        m.expired ? h("span", { class: "expired" }, "Expired") : m.online ? h("span", { class: "online" }, "Online") : offline(m),
        m.expired ? null : keyExpiryView(m),
      ),
      h("td", null, m.ssh ? h("span", { class: "badge ssh", title: "runs tsconnect SSH" }, "SSH") : null),
      h(
        "td",
        { class: "actions" },
        m.ssh
          ? h(
              "button",
              {
                type: "button",
                class: "ssh-button",
                disabled: !canSSH,
                title: canSSH ? undefined : "the machine is offline or expired",
                "aria-label": `SSH to ${m.name} (${ownerText(m)})`,
                on: { click: () => void this.#sshDialog(m) },
              },
              "SSH…",
            )
          : null,
        m.vnc && m.vncAllowed
          ? h(
              "button",
              {
                type: "button",
                class: "vnc-button",
                disabled: !(m.online && !m.expired && !m.keyExpired),
                title: m.online && !m.expired && !m.keyExpired ? undefined : "the machine is offline or expired",
                "aria-label": `VNC to ${m.name} (${ownerText(m)})`,
                on: {
                  click: () => openVNC(m),
                },
              },
              "VNC…",
            )
          : null,
        admin || m.owner?.id === this.me.id
          ? h("button", { type: "button", "aria-label": `Paths of ${m.name}`, on: { click: () => void pathsDialog(m) } }, "Paths…")
          : null,
        admin
          ? h("button", { type: "button", "aria-label": `Edit tags of ${m.name}`, on: { click: () => void this.#editTags(m) } }, "Tags…")
          : null,
        admin && !m.expired
          ? h("button", { type: "button", "aria-label": `Expire ${m.name}`, on: { click: () => void this.#expire(m) } }, "Expire")
          : null,
        admin && !m.expired
          ? h(
              "button",
              {
                type: "button",
                "aria-label": `${m.keyExpiryDisabled ? "Enable" : "Disable"} key expiry of ${m.name}`,
                on: {
                  click: () =>
                    void this.#act(() => call<NetworkNode>("PUT", `/nodes/${m.id}/key-expiry`, { disabled: !m.keyExpiryDisabled })),
                },
              },
              m.keyExpiryDisabled ? "Enable expiry" : "Disable expiry",
            )
          : null,
        admin
          ? h(
              "button",
              { type: "button", class: "danger", "aria-label": `Delete ${m.name}`, on: { click: () => void this.#delete(m) } },
              "Delete",
            )
          : null,
      ),
    );
  }

  async #sshDialog(m: NetworkNode) {
    const body = h("div", { class: "ssh-users" }, h("p", null, "Loading the users you may log in as…"));
    const error = h("p", { class: "error", role: "alert", hidden: true });
    const connect = h("button", { type: "submit", class: "primary", disabled: true }, "Connect");
    const tool = attachTool(m);
    const attachBox = tool
      ? h(
          "label",
          { class: "attach" },
          h("input", { type: "checkbox", name: "attach" }),
          ` Attach to ${tool} (session “tsconnect”): after a reconnect you are back in the same shell`,
        )
      : null;
    const linkOut = h("input", { type: "text", class: "link-url", readonly: true, "aria-label": "Link to this session", hidden: true });
    const linkSaid = h("span", { class: "link-said", role: "status" });
    const copy = h("button", { type: "button", disabled: true }, "Copy link");
    copy.addEventListener("click", () => {
      const picked = copy.form?.querySelector<HTMLInputElement>("input[name=user]:checked");
      if (!picked) return;
      const attach = copy.form?.querySelector<HTMLInputElement>("input[name=attach]");
      linkOut.value = linkURL(picked.value, m.name, attach?.checked && tool ? attachCommands[tool] : undefined);
      linkOut.hidden = false;
      linkOut.select();
      navigator.clipboard?.writeText(linkOut.value).then(
        () => (linkSaid.textContent = "Copied."),
        () => (linkSaid.textContent = "Copy it from the box."),
      ) ?? (linkSaid.textContent = "Copy it from the box.");
    });
    const dialogDone = modal<void>(
      `SSH to ${m.name}`,
      (close) => {
        const form = h(
          "form",
          {
            method: "dialog",
            on: {
              submit: (ev) => {
                ev.preventDefault();
                const picked = form.querySelector<HTMLInputElement>("input[name=user]:checked");
                if (!picked) return;
                // Synchronously in the click's task: window.open inside passes pop-up blockers.
                const attach = form.querySelector<HTMLInputElement>("input[name=attach]");
                this.sessions.open(m, picked.value, attach?.checked && tool ? attachCommands[tool] : undefined);
                close();
              },
            },
          },
          h("h2", null, "SSH to ", h("span", { class: "name" }, m.name)),
          h("p", { class: "owner-line" }, m.tags.length ? "Tagged " : "Owned by ", ownerText(m), " · ", m.addresses[0] ?? ""),
          body,
          error,
          attachBox,
          h("p", { class: "link-line" }, linkOut, " ", linkSaid),
          h("div", { class: "buttons" }, copy, h("button", { type: "button", on: { click: () => close() } }, "Cancel"), connect),
        );
        return [form];
      },
      undefined,
    );
    try {
      const r = await call<{ users: SSHUser[]; reason?: string }>("GET", `/nodes/${m.id}/ssh-users`);
      if (!r.users.length) {
        replace(body, h("p", { class: "reason", role: "status" }, r.reason || `The policy lets you log in to ${m.name} as no one.`));
      } else {
        replace(
          body,
          h(
            "fieldset",
            null,
            h("legend", null, "Log in as"),
            r.users.map((u, i) =>
              h(
                "label",
                { class: "user-choice" },
                h("input", { type: "radio", name: "user", value: u.name, checked: i === 0 }),
                " ",
                h("span", { class: "user-name" }, u.name),
                u.action === "check" ? h("span", { class: "badge check", title: "you will be asked to re-authenticate" }, "check") : null,
              ),
            ),
          ),
        );
        connect.disabled = false;
        copy.disabled = false;
        body.querySelector<HTMLInputElement>("input[name=user]")?.focus();
      }
    } catch (e) {
      replace(body);
      error.hidden = false;
      error.textContent = message(e);
    }
    await dialogDone;
  }

  async #editTags(m: NetworkNode) {
    const input = h("input", {
      type: "text",
      name: "tags",
      value: m.tags.join(", "),
      size: 40,
      "aria-describedby": "tags-help",
      autofocus: true,
    });
    const error = h("p", { class: "error", role: "alert", hidden: true });
    await modal<void>(
      `Tags of ${m.name}`,
      (close) => {
        const form = h(
          "form",
          {
            on: {
              submit: async (ev) => {
                ev.preventDefault();
                const tags = input.value.split(/[\s,]+/).filter(Boolean);
                try {
                  const updated = await call<NetworkNode>("PUT", `/nodes/${m.id}/tags`, { tags });
                  this.#render(this.#machines.map((x) => (x.id === updated.id ? updated : x)));
                  close();
                } catch (e) {
                  error.hidden = false;
                  error.textContent = message(e);
                }
              },
            },
          },
          h("h2", null, "Tags of ", h("span", { class: "name" }, m.name)),
          h("label", null, "Tags ", input),
          h("p", { id: "tags-help", class: "help" }, "Comma-separated, e.g. tag:server, tag:db. No tags gives the machine back to a user."),
          error,
          h(
            "div",
            { class: "buttons" },
            h("button", { type: "button", on: { click: () => close() } }, "Cancel"),
            h("button", { type: "submit", class: "primary" }, "Save"),
          ),
        );
        return [form];
      },
      undefined,
    );
  }

  async #expire(m: NetworkNode) {
    if (
      !(await confirmDialog(
        `Expire ${m.name} (${ownerText(m)})? Its key stops working and its sessions end; it must log in again.`,
        "Expire",
      ))
    )
      return;
    await this.#act(() => call<NetworkNode>("POST", `/nodes/${m.id}/expire`));
  }

  async #delete(m: NetworkNode) {
    if (!(await confirmDialog(`Delete ${m.name} (${ownerText(m)}) from the network?`, "Delete"))) return;
    await this.#act(() => call<void>("DELETE", `/nodes/${m.id}`));
  }

  async #act(fn: () => Promise<unknown>) {
    try {
      await fn();
      await this.#load();
    } catch (e) {
      this.#showError(e instanceof ApiError ? e.message : message(e));
    }
  }
}

/**
 * offline is the status of a machine that holds no connection to control (stopped, cut off
 * from control, or not back yet after an outage) and since when, as control last saw it; the
 * row turns Online again, live, once the machine reconnects.
 */
function offline(m: NetworkNode): HTMLElement {
  if (!m.lastSeen) return h("span", { class: "offline", title: "no connection to control yet" }, lostControlText(null));
  return h(
    "span",
    { class: "offline", title: `no connection to control since ${localTime(m.lastSeen)}`, "data-since": m.lastSeen },
    lostControlText(m.lastSeen),
  );
}

/**
 * keyExpiryView says when the machine's node key expires ("Key expires in 3 d"), that it
 * has expired (the machine must re-authenticate with `tsconnect login`), or that an admin
 * disabled its expiry; null when the server sent no expiry.
 */
function keyExpiryView(m: NetworkNode): HTMLElement | null {
  if (m.keyExpiryDisabled) return h("div", { class: "key-expiry" }, "Key expiry disabled");
  if (m.keyExpired)
    return h("div", { class: "key-expired", title: "it must re-authenticate: tsconnect login" }, `Key expired ${ago(m.keyExpiry)}`);
  if (!m.keyExpiry) return null;
  return h("div", { class: "key-expiry", title: localTime(m.keyExpiry) }, `Key expires ${ago(m.keyExpiry)}`);
}

function lostControlText(since: string | null): string {
  return since ? `Offline: lost control ${ago(since)}` : "Offline: never connected";
}
