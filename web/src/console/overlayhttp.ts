// HTTP/1.1 GET over one byte stream (a TCP connection through the page's own node, so the
// request and the answer travel only inside the overlay's WireGuard tunnel): the Recordings
// page reads a recorder's API with it. One request per stream (Connection: close).

/** A TCP stream through the overlay, as the page's node opens it (the npm package's TCPStream, ipn.dial). */
export interface OverlayStream {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  close(): void;
}

/** Opens a stream to addr ("HOST:PORT") over the overlay. */
export type Dial = (addr: string) => Promise<OverlayStream>;

/** An answer: its status, headers (lower-case names) and body (streamed as it arrives). */
export interface OverlayResponse {
  status: number;
  headers: Map<string, string>;
  body: ReadableStream<Uint8Array>;
}

/** Bounds of an answer's head and of one chunk-size line. */
export const MAX_HEAD = 16 << 10;
const MAX_CHUNK_LINE = 32;

/** Reads bytes from a stream reader, with put-back. */
class Bytes {
  #buf = new Uint8Array(0);
  constructor(readonly reader: ReadableStreamDefaultReader<Uint8Array>) {}
  /** Reads more into the buffer; false at the end. */
  async more(): Promise<boolean> {
    const { done, value } = await this.reader.read();
    if (done) return false;
    const b = new Uint8Array(this.#buf.length + value.length);
    b.set(this.#buf);
    b.set(value, this.#buf.length);
    this.#buf = b;
    return true;
  }
  get buf() {
    return this.#buf;
  }
  take(n: number): Uint8Array {
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return out;
  }
  /** A line ending in CRLF (without it), at most max bytes. */
  async line(max: number, what: string): Promise<string> {
    for (;;) {
      const i = this.#buf.indexOf(10);
      if (i >= 0) {
        const l = new TextDecoder().decode(this.take(i + 1));
        return l.replace(/\r?\n$/, "");
      }
      if (this.#buf.length > max) throw new Error(`${what} longer than ${max} bytes`);
      if (!(await this.more())) throw new Error(`the connection ended inside the ${what}`);
    }
  }
}

/** GETs path from addr over the overlay. Rejects when the answer's head is malformed. */
export async function overlayGet(dial: Dial, addr: string, path: string, signal?: AbortSignal): Promise<OverlayResponse> {
  const s = await dial(addr);
  const onAbort = () => s.close();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    // The request, without half-closing: a Go server takes an early end of stream for the
    // client gone and would end a followed recording.
    const w = s.writable.getWriter();
    await w.write(
      new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: ${addr}\r\nConnection: close\r\nAccept-Encoding: identity\r\n\r\n`),
    );
    w.releaseLock();
    const r = new Bytes(s.readable.getReader());
    let headLen = 0;
    const status = await r.line(MAX_HEAD, "answer's status line");
    const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(status);
    if (!m) throw new Error("the recorder's answer is not HTTP/1.1");
    const headers = new Map<string, string>();
    for (;;) {
      const l = await r.line(MAX_HEAD, "answer's head");
      headLen += l.length + 2;
      if (headLen > MAX_HEAD) throw new Error(`the answer's head is longer than ${MAX_HEAD} bytes`);
      if (l === "") break;
      const c = l.indexOf(":");
      if (c <= 0) throw new Error("the answer has a malformed header line");
      headers.set(l.slice(0, c).trim().toLowerCase(), l.slice(c + 1).trim());
    }
    const chunked = /chunked/i.test(headers.get("transfer-encoding") ?? "");
    const lenText = headers.get("content-length");
    let left = lenText !== undefined && !chunked ? Number(lenText) : Infinity;
    if (!(left >= 0)) throw new Error("the answer has a bad Content-Length");
    let chunkLeft = 0; // bytes of the current chunk still to come (chunked)
    let ended = false;
    const body = new ReadableStream<Uint8Array>({
      pull: async (ctl) => {
        try {
          if (ended) return;
          if (chunked && chunkLeft === 0) {
            const sz = await r.line(MAX_CHUNK_LINE, "chunk size");
            const n = parseInt(sz.split(";")[0] ?? "", 16);
            if (!(n >= 0)) throw new Error("the answer has a malformed chunk size");
            if (n === 0) {
              ended = true;
              ctl.close();
              s.close();
              return;
            }
            chunkLeft = n;
          }
          if (left === 0) {
            ended = true;
            ctl.close();
            s.close();
            return;
          }
          if (r.buf.length === 0 && !(await r.more())) {
            ended = true;
            if (chunked || left !== Infinity) ctl.error(new Error("the connection ended before the answer did"));
            else ctl.close();
            s.close();
            return;
          }
          let n = Math.min(r.buf.length, left);
          if (chunked) n = Math.min(n, chunkLeft);
          const b = r.take(n);
          if (left !== Infinity) left -= n;
          if (chunked) {
            chunkLeft -= n;
            if (chunkLeft === 0) await r.line(MAX_CHUNK_LINE, "chunk end");
          }
          ctl.enqueue(b);
        } catch (e) {
          ended = true;
          ctl.error(e);
          s.close();
        }
      },
      cancel: () => s.close(),
    });
    return { status: Number(m[1]), headers, body };
  } catch (e) {
    signal?.removeEventListener("abort", onAbort);
    s.close();
    throw e;
  }
}

/** The body of an answer as text, at most max bytes. */
export async function bodyText(r: OverlayResponse, max = 8 << 20): Promise<string> {
  const reader = r.body.getReader();
  const parts: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.length;
    if (n > max) {
      void reader.cancel();
      throw new Error(`the answer is longer than ${max} bytes`);
    }
    parts.push(value);
  }
  const all = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  return new TextDecoder().decode(all);
}
