// The recording player: replays an asciicast v2 stream into an xterm.js terminal while it
// downloads (play/pause, speed 0.5–4×, seek by a slider, follow a live recording). Seeking
// replays the output from the start at once (no pauses) up to the point, then plays on.

import { Terminal } from "@xterm/xterm";
import { h } from "./dom.js";

/** The longest line the player takes (the recorder's bound on an event line, and some). */
export const MAX_LINE = 512 << 10;
/** How much output the player keeps for seeking; past it, the rest is not loaded. */
export const MAX_HELD = 128 << 20;
/** The speeds offered. */
export const SPEEDS = [0.5, 1, 2, 4] as const;

/** One event of a recording: its time (seconds from the start), "o" output or "r" resize, data. */
interface CastEvent {
  t: number;
  kind: "o" | "r";
  data: string;
}

/** The header line's fields the player uses. */
interface CastHeader {
  width: number;
  height: number;
}

/** A .cast being downloaded: its bytes and whether the recording is still in progress. */
export interface CastStream {
  body: ReadableStream<Uint8Array>;
  live: boolean;
}

/** Splits a byte stream into lines (without "\n"), refusing one longer than MAX_LINE. */
export async function* castLines(body: ReadableStream<Uint8Array>, signal?: AbortSignal): AsyncGenerator<string> {
  const reader = body.getReader();
  signal?.addEventListener("abort", () => void reader.cancel().catch(() => {}), { once: true });
  const dec = new TextDecoder();
  let buf = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        yield buf.slice(0, nl);
        buf = buf.slice(nl + 1);
      }
      if (buf.length > MAX_LINE) throw new Error(`the recording has a line longer than ${MAX_LINE} bytes`);
    }
    buf += dec.decode();
    if (buf !== "") yield buf;
  } finally {
    reader.releaseLock();
  }
}

function parseHeader(line: string): CastHeader {
  const h = JSON.parse(line) as Partial<CastHeader> & { version?: number };
  const ok = (n: unknown) => typeof n === "number" && Number.isInteger(n) && n >= 1 && n <= 10000;
  if (h.version !== 2 || !ok(h.width) || !ok(h.height)) throw new Error("not an asciicast v2 recording (bad header line)");
  return { width: h.width as number, height: h.height as number };
}

function parseEvent(line: string, prev: number): CastEvent | undefined {
  const e = JSON.parse(line) as unknown;
  if (!Array.isArray(e) || e.length !== 3 || typeof e[0] !== "number" || typeof e[1] !== "string" || typeof e[2] !== "string") {
    throw new Error("the recording has a malformed event line");
  }
  const [t, kind, data] = e as [number, string, string];
  if (!(t >= prev) || t > 1e8) throw new Error(`the recording's time goes back or out of range at ${t}`);
  if (kind === "o" || kind === "r") return { t, kind, data };
  return undefined; // input and anything else: not shown
}

/** "1:05" for 65 s, "1:02:03" past an hour. */
export function clock(s: number): string {
  s = Math.max(0, Math.floor(s));
  const two = (n: number) => String(n).padStart(2, "0");
  const m = Math.floor(s / 60) % 60;
  const hr = Math.floor(s / 3600);
  return hr > 0 ? `${hr}:${two(m)}:${two(s % 60)}` : `${m}:${two(s % 60)}`;
}

/** A player of one recording, in its element `el`. Call dispose when done. */
export class Player {
  readonly el: HTMLElement;
  readonly term: Terminal;
  #events: CastEvent[] = [];
  #header: CastHeader = { width: 80, height: 24 };
  #held = 0;
  #loading = true;
  #inProgress: boolean; // the recording is still being made (the Live badge)
  #follow: boolean; // playback keeps to its newest output
  #error = "";
  /** Playback: the recording time at #wallStart, and whether it runs. */
  #pos = 0;
  #wallStart = 0;
  #playing = false;
  #speed = 1;
  #next = 0; // the index of the next event to write
  #timer: ReturnType<typeof setTimeout> | undefined;
  #writes: Promise<void> = Promise.resolve();
  #disposed = false;
  readonly #abort = new AbortController();
  readonly #playBtn = h("button", { type: "button", class: "player-play", "aria-label": "Play" }, "▶");
  readonly #slider = h("input", {
    type: "range",
    class: "player-seek",
    min: "0",
    max: "0",
    step: "any",
    value: "0",
    "aria-label": "Seek",
  });
  readonly #time = h("span", { class: "player-time" }, "0:00 / 0:00");
  readonly #status = h("span", { class: "player-status", role: "status" });
  readonly #badge = h("span", { class: "badge live", hidden: true }, "Live");

  /** Starts loading stream: the first output plays as soon as it arrives (autoplay). */
  constructor(stream: CastStream, opts: { fontFamily?: string; fontSize?: number } = {}) {
    this.#inProgress = this.#follow = stream.live;
    this.#badge.hidden = !stream.live;
    this.term = new Terminal({
      disableStdin: true,
      convertEol: false,
      scrollback: 1000,
      fontFamily: opts.fontFamily,
      fontSize: opts.fontSize,
    });
    const screen = h("div", { class: "player-screen" });
    const speed = h(
      "select",
      {
        class: "player-speed",
        "aria-label": "Speed",
        on: { change: (ev) => this.setSpeed(Number((ev.target as HTMLSelectElement).value)) },
      },
      ...SPEEDS.map((s) => h("option", { value: String(s), selected: s === 1 }, `${s}×`)),
    );
    this.#playBtn.addEventListener("click", () => (this.#playing ? this.pause() : this.play()));
    this.#slider.addEventListener("input", () => void this.seek(Number(this.#slider.value)));
    this.el = h(
      "div",
      { class: "player" },
      screen,
      h("div", { class: "player-bar" }, this.#playBtn, this.#slider, this.#time, speed, this.#badge, this.#status),
    );
    this.term.open(screen);
    void this.#load(stream.body);
    this.play();
  }

  /** The recording's length so far (seconds). */
  get duration(): number {
    return this.#events.at(-1)?.t ?? 0;
  }
  /** Where playback is (seconds). */
  get position(): number {
    return this.#playing ? Math.min(this.#pos + ((performance.now() - this.#wallStart) / 1000) * this.#speed, this.duration) : this.#pos;
  }
  get playing(): boolean {
    return this.#playing;
  }
  get loading(): boolean {
    return this.#loading;
  }
  /** Whether the recording is still being made. */
  get live(): boolean {
    return this.#inProgress;
  }
  get error(): string {
    return this.#error;
  }

  async #load(body: ReadableStream<Uint8Array>) {
    let first = true;
    let prev = 0;
    try {
      for await (const line of castLines(body, this.#abort.signal)) {
        if (this.#disposed) return;
        if (first) {
          this.#header = parseHeader(line);
          this.term.resize(this.#header.width, this.#header.height);
          first = false;
          continue;
        }
        if (line === "") continue;
        const e = parseEvent(line, prev);
        if (!e) continue;
        prev = e.t;
        this.#held += e.data.length;
        if (this.#held > MAX_HELD) {
          this.#fail(`the recording is longer than the player holds (${MAX_HELD >> 20} MiB of output): only its start is shown`);
          this.#abort.abort();
          break;
        }
        this.#events.push(e);
        this.#kick();
      }
      if (first) throw new Error("the recording is empty");
    } catch (e) {
      if (!this.#disposed) this.#fail(e instanceof Error ? e.message : String(e));
    } finally {
      this.#loading = false;
      if (this.#inProgress) {
        this.#inProgress = this.#follow = false;
        this.#badge.hidden = true;
        if (!this.#error) this.#status.textContent = "The session ended.";
      }
      this.#draw();
    }
  }

  #fail(text: string) {
    this.#error = text;
    this.#status.textContent = text;
  }

  /** Writes text to the terminal in order; settled resolves once all of it is drawn. */
  #write(text: string) {
    if (text === "") return;
    this.#writes = this.#writes.then(() => new Promise<void>((r) => this.term.write(text, r)));
  }

  #resize(data: string) {
    const m = /^(\d{1,5})x(\d{1,5})$/.exec(data);
    if (m) this.#writes = this.#writes.then(() => this.term.resize(Number(m[1]), Number(m[2])));
  }

  /** Writes every event up to time t from #next on (output concatenated). */
  #catchUp(t: number) {
    let out = "";
    const ev = this.#events;
    for (let e = ev[this.#next]; e && e.t <= t; e = ev[this.#next]) {
      this.#next++;
      if (e.kind === "o") {
        out += e.data;
      } else {
        this.#write(out);
        out = "";
        this.#resize(e.data);
      }
      if (out.length > 1 << 20) {
        this.#write(out);
        out = "";
      }
    }
    this.#write(out);
  }

  /** Resolves once everything written so far is on the screen. */
  settled(): Promise<void> {
    return this.#writes;
  }

  /** Runs the clock: writes what is due and sleeps until the next event (or more data). */
  #tick = () => {
    this.#timer = undefined;
    if (!this.#playing || this.#disposed) return;
    const now = this.position;
    this.#catchUp(now);
    if (this.#next >= this.#events.length && !this.#loading) {
      this.#pos = this.duration;
      this.#playing = false;
    } else if (this.#next < this.#events.length) {
      const wait = (((this.#events[this.#next]?.t ?? now) - now) / this.#speed) * 1000;
      this.#timer = setTimeout(this.#tick, Math.min(Math.max(wait, 0), 250));
    }
    // else: waiting for data; #kick restarts the clock when it comes.
    this.#draw();
  };

  /** New events arrived: a live recording jumps to them; a waiting clock goes on. */
  #kick() {
    if (this.#follow && this.#playing) {
      // A live session plays as it happens: what arrives is shown at once.
      this.#pos = this.duration;
      this.#wallStart = performance.now();
    }
    if (this.#playing && this.#timer === undefined) this.#timer = setTimeout(this.#tick, 0);
    if (this.#events.length % 64 === 1) this.#draw();
  }

  play(): void {
    if (this.#playing) return;
    if (!this.#loading && this.#pos >= this.duration && this.duration > 0) void this.seek(0);
    this.#playing = true;
    this.#wallStart = performance.now();
    this.#tick();
  }

  pause(): void {
    if (!this.#playing) return;
    this.#pos = this.position;
    this.#playing = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#draw();
  }

  /** Sets the speed (one of SPEEDS), keeping the position. */
  setSpeed(s: number): void {
    if (!SPEEDS.includes(s as (typeof SPEEDS)[number])) return;
    this.#pos = this.position;
    this.#wallStart = performance.now();
    this.#speed = s;
  }

  /** Shows the screen as it was at time t: replays the output from the start at once. */
  async seek(t: number): Promise<void> {
    t = Math.min(Math.max(t, 0), this.duration);
    this.#follow = false; // the past of a live session plays at its own pace
    this.#writes = this.#writes.then(() => {
      this.term.reset();
      this.term.resize(this.#header.width, this.#header.height);
    });
    this.#next = 0;
    this.#catchUp(t);
    this.#pos = t;
    this.#wallStart = performance.now();
    this.#draw();
    await this.settled();
  }

  #draw() {
    const pos = this.position;
    this.#playBtn.textContent = this.#playing ? "⏸" : "▶";
    this.#playBtn.setAttribute("aria-label", this.#playing ? "Pause" : "Play");
    this.#slider.max = String(this.duration);
    if (document.activeElement !== this.#slider) this.#slider.value = String(pos);
    this.#time.textContent = `${clock(pos)} / ${clock(this.duration)}${this.#loading ? " …" : ""}`;
  }

  dispose(): void {
    this.#disposed = true;
    clearTimeout(this.#timer);
    this.#abort.abort();
    this.term.dispose();
  }
}
