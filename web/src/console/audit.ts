// The Audit page (admins): control's audit log, above all the agents' SSH login decisions
// (accept, reject, check and its outcome, revocation, end), with filters (user, machine, date,
// action), who logged in from which node as which local user and why, a link to the session's
// recording on the Recordings page, and the JSON lines export (GET /audit/export).

import { call } from "./api.js";
import { duration, h, headedTable, localTime, replace } from "./dom.js";
import { fieldValue, filterForm, filterValues, type FilterValues } from "./filters.js";
import { ListPage } from "./listpage.js";

/** An SSH login decision of an audit event (docs/api.md "The audit log"). */
export interface AuditSSH {
  srcNode?: number;
  srcName?: string;
  srcTagged?: boolean;
  dstNode: number;
  dstName: string;
  remote: string;
  sshUser?: string;
  localUser?: string;
  rule?: string;
  recording?: string;
  exitCode?: number;
  durationMs?: number;
  session?: string;
}

/** One event of GET /audit. */
export interface AuditEvent {
  id: number;
  time: string;
  user: string;
  method: string;
  kind: string;
  ok: boolean;
  detail: string;
  ssh?: AuditSSH;
}

/** The filters: substrings of the user and of a machine's name, local days, an action. */
export interface AuditFilter extends FilterValues {
  action?: string;
}

/** The actions the filter offers: their labels and the kinds (or, for sign-ins, methods) they take. */
const actions: { value: string; label: string; match: (e: AuditEvent) => boolean }[] = [
  { value: "accept", label: "Accept", match: (e) => e.kind === "ssh-accept" },
  { value: "reject", label: "Reject", match: (e) => e.kind === "ssh-reject" },
  { value: "check", label: "Check", match: (e) => e.kind.startsWith("ssh-check") },
  { value: "revoke", label: "Revocation", match: (e) => e.kind === "ssh-revoke" },
  { value: "end", label: "End", match: (e) => e.kind === "ssh-end" },
  { value: "sign-in", label: "Console and node sign-ins", match: (e) => e.method !== "ssh" },
];

/** matches says whether e passes f (a machine is the login's source or target node). */
export function matches(e: AuditEvent, f: AuditFilter): boolean {
  const has = (v: string | undefined, part: string) => (v ?? "").toLowerCase().includes(part.toLowerCase());
  if (f.user && !has(e.user, f.user)) return false;
  if (f.machine && !has(e.ssh?.dstName, f.machine) && !has(e.ssh?.srcName, f.machine)) return false;
  const t = Date.parse(e.time);
  if (f.from !== undefined && !(t >= f.from)) return false;
  if (f.to !== undefined && !(t < f.to)) return false;
  if (f.action && !actions.find((a) => a.value === f.action)?.match(e)) return false;
  return true;
}

/** Events asked for per request (GET /audit's most). */
const pageSize = 1000;
/** Rows one search (or "Older events") shows at most before it stops. */
const rowsPerSearch = 200;
/** Requests one search makes at most: past them it stops and offers "Older events". */
const pagesPerSearch = 10;

/** The Audit page. */
export class AuditPage extends ListPage<AuditEvent> {
  readonly el: HTMLElement;
  #form: HTMLFormElement;
  #status = h("p", { class: "help", role: "status" });
  #more = h("button", { type: "button", hidden: true }, "Older events");
  #export = h("a", { class: "audit-export", href: "/api/v1/audit/export", download: "audit.jsonl" }, "Export JSON lines");
  #filter: AuditFilter = {};
  /** The rows shown, and the id to read on from (undefined: from the newest; 0: the log's start was reached). */
  #shown: AuditEvent[] = [];
  #cursor: number | undefined;
  #scanned = 0;

  constructor() {
    super();
    this.#form = filterForm(
      () => void this.#search(),
      h(
        "label",
        null,
        "Action",
        h(
          "select",
          { name: "action", class: "filter-action" },
          h("option", { value: "" }, "All"),
          actions.map((a) => h("option", { value: a.value }, a.label)),
        ),
      ),
    );
    this.#more.addEventListener("click", () => void this.load());
    this.el = h(
      "section",
      { class: "audit", "aria-labelledby": "audit-h" },
      h("h1", { id: "audit-h" }, "Audit"),
      h(
        "p",
        { class: "help" },
        "Sign-ins and the agents' SSH login decisions, newest first. ",
        this.#export,
        " (the whole log, from the From day on).",
      ),
      this.#form,
      this.error,
      this.#status,
      headedTable(["Time", "Action", "Who", "From", "Machine", "As", "Why", "Session", "Recording"], this.body),
      this.#more,
    );
    void this.#search();
  }

  #search() {
    this.#filter = { ...filterValues(this.#form), action: fieldValue(this.#form, "action") || undefined };
    this.#export.href =
      "/api/v1/audit/export" +
      (this.#filter.from !== undefined ? `?since=${encodeURIComponent(new Date(this.#filter.from).toISOString())}` : "");
    this.#shown = [];
    this.#cursor = undefined;
    this.#scanned = 0;
    this.error.hidden = true;
    return this.load();
  }

  /** Reads on from the cursor, newest first, until a search's rows or requests are used up. */
  protected async fetch(): Promise<AuditEvent[]> {
    const f = this.#filter;
    let found = 0;
    for (let i = 0; i < pagesPerSearch && found < rowsPerSearch && this.#cursor !== 0; i++) {
      const q = new URLSearchParams({ limit: String(pageSize) });
      if (this.#cursor !== undefined) q.set("before", String(this.#cursor));
      const { events } = await call<{ events: AuditEvent[] }>("GET", `/audit?${q}`);
      this.#scanned += events.length;
      for (const e of events) {
        if (found < rowsPerSearch && matches(e, f)) {
          this.#shown.push(e);
          found++;
        }
        this.#cursor = e.id;
        if (found >= rowsPerSearch) break;
      }
      const last = events.at(-1);
      // The log's start, or past the From day (the log is newest first): nothing older matches.
      if (events.length < pageSize || (last && f.from !== undefined && Date.parse(last.time) < f.from)) this.#cursor = 0;
    }
    this.#more.hidden = this.#cursor === 0;
    this.#status.textContent = `${this.#shown.length} of ${this.#scanned} events read${this.#cursor === 0 ? " (all)" : ""}.`;
    return this.#shown;
  }

  protected row(e: AuditEvent): HTMLTableRowElement {
    const x = e.ssh;
    const action = actions.find((a) => a.value !== "sign-in" && a.match(e));
    const session =
      x?.exitCode !== undefined || x?.durationMs !== undefined
        ? [x.exitCode !== undefined ? `exit ${x.exitCode}` : "", x.durationMs !== undefined ? duration(x.durationMs) : ""]
            .filter(Boolean)
            .join(", ")
        : "";
    return h(
      "tr",
      { "data-id": String(e.id), "data-kind": e.kind },
      h("td", { title: e.time }, localTime(e.time)),
      h(
        "td",
        { class: "action" },
        x ? (action?.label ?? e.kind) : `${e.method} ${e.kind}`,
        x && e.kind.replace(/^ssh-/, "") !== action?.value ? h("span", { class: "badge" }, e.kind.replace(/^ssh-/, "")) : null,
        e.ok ? null : h("span", { class: "badge" }, "refused"),
      ),
      h("td", { class: "who" }, e.user),
      h(
        "td",
        { class: "src", title: x?.remote ?? "" },
        x ? (x.srcName ?? x.remote) : "",
        x?.srcTagged ? h("span", { class: "badge" }, "tagged") : null,
      ),
      h("td", { class: "dst" }, x?.dstName ?? ""),
      h("td", { class: "as" }, x?.localUser ?? "", x?.sshUser && x.sshUser !== x.localUser ? ` (asked ${x.sshUser})` : ""),
      h("td", { class: "why" }, e.detail, x?.rule ? h("span", { class: "help" }, ` rule ${x.rule}`) : null),
      h("td", { class: "session" }, session),
      h(
        "td",
        { class: "recording" },
        x?.recording ? h("a", { href: `#/recordings?id=${encodeURIComponent(x.recording)}`, class: "recording-link" }, "Recording") : "",
      ),
    );
  }

  /** Redraws with the empty-list line when no event matches. */
  protected override async load() {
    await super.load();
    if (this.#shown.length === 0 && this.error.hidden)
      replace(this.body, h("tr", null, h("td", { colspan: "9", class: "empty" }, "No events.")));
  }
}
