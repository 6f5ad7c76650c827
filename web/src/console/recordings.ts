// The Recordings page (admins, and the users the policy's recordingViewers names): the
// session recordings of the network's recorder nodes, with filters (user, machine, date),
// a player and a Live badge for sessions in progress. Recordings never pass through
// control: the page joins the network with a node of its own (a key from POST
// /recordings/launch) and reads each recorder's API over the overlay, as SSH goes.

import { createIPN } from "../../../npm/src/index.js";
import type { IPN } from "../../../npm/types/index.js";
import { ApiError, call, message } from "./api.js";
import { bytes, duration, h, localTime, replace } from "./dom.js";
import { filterForm, filterValues } from "./filters.js";
import { bodyText, overlayGet, type Dial, type OverlayStream } from "./overlayhttp.js";
import { Player } from "./player.js";
import { termFont } from "./termsettings.js";

declare const __TSCONNECT_WASM_URL__: string;

/** What POST /recordings/launch answers. */
interface RecordingsLaunch {
  authKey: string;
  controlURL: string;
  expires: string;
  recorders: { name: string; address: string }[];
}

/** A recording's metadata as a recorder lists it (docs/protocols.md "Session recordings"). */
export interface RecordingMeta {
  id: string;
  targetNode: string;
  srcUser: string;
  srcNode: string;
  localUser: string;
  start: string;
  end?: string;
  exitCode?: number;
  state: string;
  error?: string;
  size: number;
}

/** The list filters, as the recorder's query takes them. */
export interface RecordingFilter {
  user?: string;
  machine?: string;
  from?: string; // RFC 3339
  to?: string;
}

/** One page of a recorder's list. */
const pageSize = 50;

/** The query of a list request. */
export function listQuery(f: RecordingFilter, before?: string): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) q.set(k, v);
  if (before) q.set("before", before);
  q.set("limit", String(pageSize));
  return `/v1/recordings?${q}`;
}

/**
 * The page's node's TCP streams (ipn.dial): until the npm package has it, the page says so
 * instead of reading recordings any other way.
 */
function ipnDial(ipn: IPN): Dial {
  const d = (ipn as unknown as { dial?: (host: string, port: number) => Promise<OverlayStream> }).dial;
  if (typeof d !== "function") {
    return () => Promise.reject(new Error("this build of tsconnect cannot open a stream to a recorder yet (ipn.dial)"));
  }
  return (addr) => {
    const i = addr.lastIndexOf(":");
    return d.call(ipn, addr.slice(0, i).replace(/^\[|\]$/g, ""), Number(addr.slice(i + 1)));
  };
}

/** A recorder's API over the overlay. */
export class RecorderClient {
  constructor(
    private readonly dial: Dial,
    readonly name: string,
    readonly address: string,
  ) {}

  /** Lists one page of recordings matching f; next is the cursor of the following page. */
  async list(f: RecordingFilter, before?: string): Promise<{ recordings: RecordingMeta[]; next?: string }> {
    const r = await overlayGet(this.dial, this.address, listQuery(f, before));
    const text = await bodyText(r);
    if (r.status !== 200) throw new Error(`${this.name}: ${errorText(text, r.status)}`);
    return JSON.parse(text) as { recordings: RecordingMeta[]; next?: string };
  }

  /** Recording id's metadata; undefined when this recorder has no such recording. */
  async meta(id: string): Promise<RecordingMeta | undefined> {
    const r = await overlayGet(this.dial, this.address, `/v1/recordings/${encodeURIComponent(id)}`);
    const text = await bodyText(r, 64 << 10);
    if (r.status === 404) return undefined;
    if (r.status !== 200) throw new Error(`${this.name}: ${errorText(text, r.status)}`);
    return JSON.parse(text) as RecordingMeta;
  }

  /** Opens recording id's .cast, following it while it is recorded when follow is set. */
  async cast(id: string, follow: boolean, signal?: AbortSignal): Promise<{ body: ReadableStream<Uint8Array>; live: boolean }> {
    const r = await overlayGet(
      this.dial,
      this.address,
      `/v1/recordings/${encodeURIComponent(id)}/cast${follow ? "?follow=1" : ""}`,
      signal,
    );
    if (r.status !== 200) throw new Error(`${this.name}: ${errorText(await bodyText(r, 64 << 10), r.status)}`);
    return { body: r.body, live: r.headers.get("tsconnect-live") === "1" };
  }
}

function errorText(text: string, status: number): string {
  try {
    const e = JSON.parse(text) as { error?: string };
    if (typeof e.error === "string") return e.error;
  } catch {
    // not JSON: the status says it
  }
  return `HTTP ${status}`;
}

/** How long a recording is (or has been, while in progress). */
function length(m: RecordingMeta): string {
  return duration((m.end ? Date.parse(m.end) : Date.now()) - Date.parse(m.start));
}

/** The Recordings page. */
export class RecordingsPage {
  readonly el: HTMLElement;
  #body = h("tbody");
  #error = h("p", { class: "error", role: "alert", hidden: true });
  #status = h("p", { class: "help", role: "status" }, "Joining the network…");
  #more = h("button", { type: "button", hidden: true }, "Older recordings");
  #playerBox = h("div", { class: "player-box" });
  #player: Player | undefined;
  #playAbort: AbortController | undefined;
  #ipn: IPN | undefined;
  #recorders: RecorderClient[] = [];
  #next = new Map<RecorderClient, string>();
  #filter: RecordingFilter = {};
  #stopped = false;
  #form: HTMLFormElement;

  /** With open, the page plays recording open (its ID, as the Audit page links it) once it has joined. */
  constructor(private readonly open?: string) {
    this.#form = filterForm(() => void this.#search());
    this.#more.addEventListener("click", () => void this.#load(true));
    this.el = h(
      "section",
      { class: "recordings", "aria-labelledby": "rec-h" },
      h("h1", { id: "rec-h" }, "Recordings"),
      this.#status,
      this.#error,
      this.#form,
      h(
        "table",
        null,
        h(
          "thead",
          null,
          h("tr", null, ...["Started", "User", "From", "Machine", "As", "Length", "Size", "State", ""].map((t) => h("th", null, t))),
        ),
        this.#body,
      ),
      this.#more,
      this.#playerBox,
    );
    void this.#start();
  }

  #fail(text: string) {
    this.#error.hidden = false;
    this.#error.textContent = text;
  }

  async #start() {
    let grant: RecordingsLaunch;
    try {
      grant = await call<RecordingsLaunch>("POST", "/recordings/launch");
    } catch (e) {
      this.#status.textContent = "";
      this.#form.hidden = true;
      if (e instanceof ApiError && e.status === 403) this.#fail(`You may not watch recordings: ${e.message}`);
      else this.#fail(message(e));
      return;
    }
    if (grant.recorders.length === 0) {
      this.#status.textContent = 'No recorder nodes: an ssh rule\'s "recorder" names none that exists.';
      return;
    }
    try {
      const ipn = await createIPN({
        controlURL: grant.controlURL,
        authKey: grant.authKey,
        hostname: "console-recordings",
        wasmURL: new URL(__TSCONNECT_WASM_URL__, location.href),
        logger: (line) => console.debug("tsconnect recordings:", line),
      });
      if (this.#stopped) return ipn.dispose();
      this.#ipn = ipn;
      ipn.run({ notifyPanicRecover: (msg) => this.#fail(`The tsconnect runtime failed: ${msg}`) });
      await ipn.login();
      if (this.#stopped) return;
      const dial = ipnDial(ipn);
      this.#recorders = grant.recorders.map((r) => new RecorderClient(dial, r.name, r.address));
      this.#status.textContent = `From ${grant.recorders.map((r) => r.name).join(", ")}, over the network.`;
      await this.#load(false);
      if (this.open) await this.#openID(this.open);
    } catch (e) {
      this.#fail(message(e));
    }
  }

  /** Plays recording id from whichever recorder has it. */
  async #openID(id: string) {
    for (const rc of this.#recorders) {
      const m = await rc.meta(id).catch(() => undefined);
      if (this.#stopped) return;
      if (m) return this.#play(m, rc);
    }
    this.#fail(`No recorder has the recording ${id}.`);
  }

  #search() {
    const f = filterValues(this.#form);
    const iso = (t: number | undefined) => (t === undefined ? undefined : new Date(t).toISOString());
    this.#filter = { user: f.user, machine: f.machine, from: iso(f.from), to: iso(f.to) };
    return this.#load(false);
  }

  /** Lists the first page (or, with more, the next page) of every recorder, newest first. */
  async #load(more: boolean) {
    this.#error.hidden = true;
    if (!more) {
      this.#next.clear();
      replace(this.#body);
    }
    const got: RecordingMeta[] = [];
    const from = new Map<RecordingMeta, RecorderClient>();
    const errors: string[] = [];
    await Promise.all(
      this.#recorders.map(async (rc) => {
        if (more && !this.#next.has(rc)) return;
        try {
          const p = await rc.list(this.#filter, more ? this.#next.get(rc) : undefined);
          if (p.next) this.#next.set(rc, p.next);
          else this.#next.delete(rc);
          for (const m of p.recordings) {
            got.push(m);
            from.set(m, rc);
          }
        } catch (e) {
          errors.push(message(e));
        }
      }),
    );
    if (errors.length) this.#fail(errors.join("; "));
    got.sort((a, b) => (a.id < b.id ? 1 : -1));
    for (const m of got) this.#body.append(this.#row(m, from.get(m) as RecorderClient));
    this.#more.hidden = this.#next.size === 0;
    if (!more && got.length === 0 && !errors.length)
      this.#body.append(h("tr", null, h("td", { colspan: "9", class: "empty" }, "No recordings.")));
  }

  #row(m: RecordingMeta, rc: RecorderClient): HTMLTableRowElement {
    const live = m.state === "recording";
    const state = live ? h("span", { class: "badge live" }, "Live") : h("span", { title: m.error ?? "" }, m.state);
    const play = h("button", { type: "button", class: "play" }, live ? "Watch" : "Play");
    play.addEventListener("click", () => void this.#play(m, rc));
    return h(
      "tr",
      { "data-id": m.id },
      h("td", null, localTime(m.start)),
      h("td", null, m.srcUser),
      h("td", null, m.srcNode),
      h("td", null, m.targetNode),
      h("td", null, m.localUser),
      h("td", null, length(m)),
      h("td", null, bytes(m.size)),
      h("td", null, state),
      h("td", null, play),
    );
  }

  async #play(m: RecordingMeta, rc: RecorderClient) {
    this.#closePlayer();
    const abort = (this.#playAbort = new AbortController());
    try {
      const stream = await rc.cast(m.id, m.state === "recording", abort.signal);
      if (abort.signal.aborted) return;
      this.#player = new Player(stream, { fontFamily: termFont });
      replace(this.#playerBox, h("h2", null, `${m.srcUser} on ${m.targetNode} as ${m.localUser}, ${localTime(m.start)}`), this.#player.el);
    } catch (e) {
      if (!abort.signal.aborted) this.#fail(message(e));
    }
  }

  #closePlayer() {
    this.#playAbort?.abort();
    this.#player?.dispose();
    this.#player = undefined;
    replace(this.#playerBox);
  }

  stop(): void {
    this.#stopped = true;
    this.#closePlayer();
    const ipn = this.#ipn;
    this.#ipn = undefined;
    if (ipn) void ipn.logout().finally(() => ipn.dispose());
  }
}
