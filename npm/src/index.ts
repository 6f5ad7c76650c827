// The page side of the IPN API: loads the wasm, starts one Worker per IPN and turns the
// Worker's messages back into the callbacks and promises of types/index.d.ts.

import type * as API from "../types/index.js";
import type {
  Download,
  DownloadOptions,
  FileListing,
  IPN,
  IPNCallbacks,
  IPNConfig,
  IPNError,
  IPNState,
  NetMap,
  SSHFiles,
  SSHOptions,
  SSHSession,
  TCPStream,
  UploadOptions,
} from "../types/index.js";
import { bannerCheckURL } from "./banner.js";
import { fromWire, ipnError, isIPNError as isErr } from "./errors.js";
import type { FromWorker, ToWorker } from "./protocol.js";

export const isIPNError: typeof API.isIPNError = isErr;

// One compile per wasm URL and page, shared by every IPN; a failed compile is forgotten so
// that createIPN can be retried.
const modules = new Map<string, Promise<WebAssembly.Module>>();

function compileWasm(url: string): Promise<WebAssembly.Module> {
  let p = modules.get(url);
  if (!p) {
    p = (async () => {
      const resp = await fetch(url, { credentials: "same-origin" });
      if (!resp.ok) throw new Error(`GET ${url}: HTTP ${resp.status}`);
      if (resp.headers.get("content-type")?.split(";")[0]?.trim() === "application/wasm") {
        return WebAssembly.compileStreaming(resp);
      }
      return WebAssembly.compile(await resp.arrayBuffer());
    })();
    modules.set(url, p);
    p.catch(() => modules.delete(url));
  }
  return p;
}

let workerURL: string | undefined;

function newWorker(name: string): Worker {
  workerURL ??= URL.createObjectURL(new Blob([__TSCONNECT_WORKER__], { type: "text/javascript" }));
  return new Worker(workerURL, { name });
}

let ipnCount = 0;

export const createIPN: typeof API.createIPN = async (config: IPNConfig): Promise<IPN> => {
  if (!config || typeof config.controlURL !== "string" || config.controlURL === "") {
    throw ipnError("bad_request", "createIPN: controlURL is required");
  }
  if (config.authKey !== undefined && typeof config.authKey !== "string") {
    throw ipnError("bad_request", "createIPN: authKey must be a string (or left out for an interactive login)");
  }
  const wasmURL = String(config.wasmURL ?? new URL("./tsconnect.wasm", import.meta.url));
  let module: WebAssembly.Module;
  try {
    module = await compileWasm(wasmURL);
  } catch (e) {
    throw ipnError("wasm_load_failed", `loading ${wasmURL}: ${e instanceof Error ? e.message : String(e)}`);
  }
  // Resolved on the first file transfer: next to an explicit wasmURL (a relative one against the
  // page), else next to this module (a bundler sees the literal and ships the file).
  const filesWasmURL = () =>
    String(
      config.filesWasmURL ??
        (config.wasmURL
          ? new URL("./tsconnect-files.wasm", new URL(String(config.wasmURL), globalThis.location?.href))
          : new URL("./tsconnect-files.wasm", import.meta.url)),
    );
  const worker = newWorker(`tsconnect-${++ipnCount}`);
  const ipn = new WorkerIPN(worker, config.controlURL, config.logger, filesWasmURL);
  try {
    await ipn.init(module, {
      controlURL: config.controlURL,
      authKey: config.authKey ?? "",
      hostname: config.hostname ?? "",
    });
  } catch (e) {
    worker.terminate();
    throw e;
  }
  return ipn;
};

interface Pending {
  resolve(): void;
  reject(e: IPNError): void;
}

/** The page's end of one download or upload. */
interface TransferHandlers {
  /** The session it runs on: its end ends the transfer with the session's error. */
  sid: number;
  onStart?(size: number, mtime: number): void;
  onOpen?(hidden: string, from: number): void;
  onData?(data: Uint8Array): void;
  onAck?(bytes: number): void;
  onDone(error?: IPNError): void;
}

/** How many bytes of an upload the page sends ahead of the wasm's acknowledgements (wasm's TransferWindow). */
const uploadWindow = 1 << 20;
/** The largest upload chunk the wasm takes (MaxUploadChunk). */
const uploadChunk = 256 << 10;

/** The page's end of a session or stream: a terminal's options, plus a stream's write credit. */
type SessionHandlers = SSHOptions & { onWritten?(bytes: number): void };

/** How many bytes of a stream the page sends ahead of the wasm's write credit (wasm's OutputWindow). */
const streamWindow = 1 << 20;
/** The largest write message of a stream (wasm's MaxWriteChunk). */
const streamChunk = 256 << 10;

/** An IPN whose Go runtime runs in worker. */
class WorkerIPN implements IPN {
  #worker: Worker;
  #controlURL: string;
  #logger: ((line: string) => void) | undefined;
  #callbacks: IPNCallbacks = {};
  #state: IPNState = "stopped";
  #started = false;
  #nextID = 1;
  #calls = new Map<number, Pending>();
  #sessions = new Map<number, SessionHandlers>();
  #ready: Pending | undefined;
  #dead: IPNError | undefined;

  #filesWasmURL: () => string;
  #filesLoaded: Promise<void> | undefined;
  #lists = new Map<number, { resolve(json: string): void; reject(e: IPNError): void }>();
  #transfers = new Map<number, TransferHandlers>();

  constructor(worker: Worker, controlURL: string, logger: ((line: string) => void) | undefined, filesWasmURL: () => string) {
    this.#filesWasmURL = filesWasmURL;
    this.#worker = worker;
    this.#controlURL = controlURL;
    this.#logger = logger;
    worker.onmessage = (e: MessageEvent<FromWorker>) => this.#receive(e.data);
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#die(ipnError("worker_failed", `tsconnect worker: ${e.message || "failed to start"}`));
    };
  }

  get state(): IPNState {
    return this.#state;
  }

  init(module: WebAssembly.Module, config: { controlURL: string; authKey: string; hostname: string }): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#ready = { resolve, reject };
      this.#post({ t: "init", module, config });
    });
  }

  run(callbacks: IPNCallbacks): void {
    this.#callbacks = callbacks ?? {};
    if (this.#started || this.#dead) return;
    this.#started = true;
    this.#post({ t: "run" });
  }

  login(): Promise<void> {
    return this.#call("login");
  }

  logout(): Promise<void> {
    return this.#call("logout");
  }

  ssh(host: string, user: string, options: SSHOptions): SSHSession {
    const sid = this.#nextID++;
    const closed = { v: false };
    if (this.#dead) {
      const err = this.#dead;
      queueMicrotask(() => options.onDone?.(-1, err));
      closed.v = true;
    } else {
      this.#sessions.set(sid, options);
      this.#post({
        t: "ssh",
        sid,
        host,
        user,
        rows: options.rows ?? 24,
        cols: options.cols ?? 80,
        ...(options.command ? { command: options.command } : {}),
      });
    }
    const encoder = new TextEncoder();
    return {
      write: (data) => {
        if (closed.v || !this.#sessions.has(sid)) return;
        // A copy of our own to transfer: the caller keeps its buffer.
        const bytes = typeof data === "string" ? encoder.encode(data) : data.slice();
        this.#post({ t: "write", sid, data: bytes.buffer as ArrayBuffer }, [bytes.buffer as ArrayBuffer]);
      },
      resize: (rows, cols) => {
        if (this.#sessions.has(sid) && rows > 0 && cols > 0) this.#post({ t: "resize", sid, rows, cols });
      },
      close: () => {
        if (this.#sessions.has(sid)) this.#post({ t: "close", sid });
      },
      files: this.#files(sid),
    };
  }

  dial(host: string, port: number): Promise<TCPStream> {
    if (this.#dead) return Promise.reject(this.#dead);
    const sid = this.#nextID++;
    return new Promise<TCPStream>((resolve, reject) => {
      let controller!: ReadableStreamDefaultController<Uint8Array>;
      // Acknowledgements the reader holds back: data messages waiting for room in the queue.
      let waiting: (() => void)[] = [];
      let sent = 0;
      let written = 0;
      let wake: (() => void) | undefined;
      let connected = false;
      let closedByUs = false;
      let ended: IPNError | undefined; // set once the stream is over
      const close = () => {
        closedByUs = true;
        if (this.#sessions.has(sid)) this.#post({ t: "close", sid });
      };
      const readable = new ReadableStream<Uint8Array>(
        {
          start: (c) => {
            controller = c;
          },
          pull: () => {
            const w = waiting;
            waiting = [];
            for (const f of w) f();
          },
          cancel: close,
        },
        new ByteLengthQueuingStrategy({ highWaterMark: streamChunk }),
      );
      const writable = new WritableStream<Uint8Array>({
        write: async (chunk) => {
          if (!(chunk instanceof Uint8Array)) throw ipnError("bad_request", "dial: write a Uint8Array");
          for (let at = 0; at < chunk.length;) {
            const n = Math.min(streamChunk, chunk.length - at);
            while (sent + n - written > streamWindow && !ended) await new Promise<void>((w) => (wake = w));
            if (ended) throw ended;
            const part = chunk.slice(at, at + n);
            this.#post({ t: "write", sid, data: part.buffer as ArrayBuffer }, [part.buffer as ArrayBuffer]);
            sent += n;
            at += n;
          }
        },
        close: () => {
          if (ended) throw ended;
          this.#post({ t: "closewrite", sid });
        },
        abort: close,
      });
      this.#sessions.set(sid, {
        onData: (data) => {
          controller.enqueue(data);
          if ((controller.desiredSize ?? 0) > 0) return;
          return new Promise<void>((r) => waiting.push(r));
        },
        onWritten: (bytes) => {
          written += bytes;
          wake?.();
        },
        onConnected: () => {
          connected = true;
          resolve({ readable, writable, close });
        },
        onDone: (_code, err) => {
          ended = err ?? ipnError("closed", "the stream has ended");
          wake?.();
          for (const f of waiting) f();
          waiting = [];
          if (!connected) reject(ended);
          else if (err && !closedByUs) controller.error(err);
          else {
            try {
              controller.close();
            } catch {
              // already canceled by the reader
            }
          }
        },
      });
      this.#post({ t: "dial", sid, host, port });
    });
  }

  /** Sends the Worker tsconnect-files.wasm once, compiled like the main wasm. */
  #loadFiles(): Promise<void> {
    if (this.#filesLoaded) return this.#filesLoaded;
    let url = "tsconnect-files.wasm";
    this.#filesLoaded = (async () => {
      url = this.#filesWasmURL();
      return compileWasm(url);
    })().then(
      (module) => this.#post({ t: "files-module", module }),
      (e: unknown) => {
        this.#filesLoaded = undefined;
        throw ipnError("wasm_load_failed", `loading ${url}: ${e instanceof Error ? e.message : String(e)}`);
      },
    );
    return this.#filesLoaded;
  }

  #files(sid: number): SSHFiles {
    const live = () => {
      if (this.#dead) throw this.#dead;
      if (!this.#sessions.has(sid)) throw ipnError("closed", "the session has ended");
    };
    const transfer = (h: Omit<TransferHandlers, "sid">, msg: (xid: number) => ToWorker): number => {
      const xid = this.#nextID++;
      this.#transfers.set(xid, { ...h, sid });
      this.#post(msg(xid));
      return xid;
    };
    return {
      list: async (path = ".") => {
        live();
        await this.#loadFiles();
        const json = await new Promise<string>((resolve, reject) => {
          const id = this.#nextID++;
          this.#lists.set(id, { resolve, reject });
          this.#post({ t: "list", sid, id, path });
        });
        const l = JSON.parse(json) as { path: string; entries: { name: string; size: number; mode: number; mtime: number }[] };
        const listing: FileListing = {
          path: l.path,
          entries: l.entries.map((e) => ({ ...e, isDir: (e.mode & 0o170000) === 0o040000 })),
        };
        return listing;
      },
      download: async (path: string, options: DownloadOptions = {}): Promise<Download> => {
        live();
        await this.#loadFiles();
        options.signal?.throwIfAborted();
        const from = options.resume?.offset ?? 0;
        return new Promise<Download>((resolve, reject) => {
          let controller!: ReadableStreamDefaultController<Uint8Array>;
          let unacked = 0;
          let got = from;
          let size = 0;
          let started = false;
          const ack = () => {
            if (unacked > 0) this.#post({ t: "xack", xid, bytes: unacked });
            unacked = 0;
          };
          const stream = new ReadableStream<Uint8Array>(
            {
              start: (c) => {
                controller = c;
              },
              pull: ack,
              cancel: () => this.#post({ t: "xcancel", xid }),
            },
            new ByteLengthQueuingStrategy({ highWaterMark: 256 << 10 }),
          );
          const xid = transfer(
            {
              onStart: (n, mtime) => {
                size = n;
                started = true;
                resolve({ size, mtime, stream });
              },
              onData: (data) => {
                got += data.length;
                unacked += data.length;
                controller.enqueue(data);
                if ((controller.desiredSize ?? 0) > 0) ack();
                options.onProgress?.(got, size);
              },
              onDone: (err) => {
                options.signal?.removeEventListener("abort", abort);
                if (!started) reject(err ?? ipnError("file_failed", "the download ended before it started"));
                else if (err) controller.error(err);
                else controller.close();
              },
            },
            (xid) => ({
              t: "download",
              sid,
              xid,
              path,
              ...(options.resume ? { offset: from, size: options.resume.size, mtime: options.resume.mtime } : {}),
            }),
          );
          const abort = () => this.#post({ t: "xcancel", xid });
          options.signal?.addEventListener("abort", abort, { once: true });
        });
      },
      upload: async (path: string, data: ReadableStream<Uint8Array> | Blob, options: UploadOptions = {}) => {
        live();
        await this.#loadFiles();
        options.signal?.throwIfAborted();
        // A Blob (or File) by its shape: one from another window (a child's drop) is no instance of ours.
        const blob = typeof (data as Blob).stream === "function" && typeof (data as Blob).size === "number" ? (data as Blob) : undefined;
        const total = blob?.size;
        if (options.resume && !blob) throw ipnError("bad_request", "upload: only a Blob (or File) can be resumed");
        let opened: (from: number) => void = () => {};
        const open = new Promise<number>((r) => (opened = r));
        let acked = 0;
        let wake: (() => void) | undefined;
        let failed: IPNError | undefined;
        let finished!: (err?: IPNError) => void;
        const done = new Promise<IPNError | undefined>((r) => (finished = r));
        const xid = transfer(
          {
            onOpen: (hidden, from) => {
              options.onOpen?.(hidden);
              opened(from);
            },
            onAck: (n) => {
              acked += n;
              wake?.();
            },
            onDone: (err) => {
              failed = err;
              finished(err);
              opened(0);
              wake?.();
            },
          },
          (xid) => ({
            t: "upload",
            sid,
            xid,
            path,
            overwrite: options.overwrite === true,
            mode: options.mode ?? 0,
            ...(options.resume ? { resume: options.resume.hidden, size: total ?? 0 } : {}),
          }),
        );
        // A resumed upload sends from where the wasm says (after it checked the hidden file); a new one at once.
        const start = options.resume ? await open : 0;
        const reader = (blob ? blob.slice(start).stream() : (data as ReadableStream<Uint8Array>)).getReader();
        acked = start;
        let ended = false;
        const abort = () => {
          if (!ended) this.#post({ t: "xcancel", xid });
        };
        options.signal?.addEventListener("abort", abort, { once: true });
        let sent = start;
        try {
          for (;;) {
            const r = await reader.read();
            if (r.done) break;
            for (let at = 0; at < r.value.length && !failed;) {
              const n = Math.min(uploadChunk, r.value.length - at);
              while (sent + n - acked > uploadWindow && !failed) await new Promise<void>((w) => (wake = w));
              if (failed) break;
              const chunk = r.value.slice(at, at + n);
              this.#post({ t: "xwrite", xid, data: chunk.buffer as ArrayBuffer }, [chunk.buffer as ArrayBuffer]);
              sent += n;
              at += n;
              options.onProgress?.(acked, total);
            }
            if (failed) break;
          }
          if (!failed) this.#post({ t: "xend", xid });
        } catch (e) {
          this.#post({ t: "xcancel", xid });
          throw e;
        } finally {
          ended = true;
          options.signal?.removeEventListener("abort", abort);
        }
        const err = await done;
        if (err) {
          void reader.cancel().catch(() => {});
          throw err;
        }
        options.onProgress?.(sent, total);
      },
    };
  }

  dispose(): void {
    this.#die(ipnError("closed", "the IPN was disposed"));
  }

  #post(msg: ToWorker, transfer: Transferable[] = []) {
    if (!this.#dead) this.#worker.postMessage(msg, transfer);
  }

  #call(method: "login" | "logout"): Promise<void> {
    if (this.#dead) return Promise.reject(this.#dead);
    return new Promise((resolve, reject) => {
      const id = this.#nextID++;
      this.#calls.set(id, { resolve, reject });
      this.#post({ t: "call", id, method });
    });
  }

  /** Ends everything: the Worker, pending calls and sessions. */
  #die(err: IPNError) {
    if (this.#dead) return;
    this.#dead = err;
    this.#worker.terminate();
    this.#state = "stopped";
    this.#ready?.reject(err);
    this.#ready = undefined;
    for (const p of this.#calls.values()) p.reject(err);
    this.#calls.clear();
    for (const p of this.#lists.values()) p.reject(err);
    this.#lists.clear();
    const transfers = [...this.#transfers.values()];
    this.#transfers.clear();
    for (const t of transfers) t.onDone(err);
    const sessions = [...this.#sessions.values()];
    this.#sessions.clear();
    for (const s of sessions) s.onDone?.(-1, err);
  }

  #receive(msg: FromWorker) {
    switch (msg.t) {
      case "ready":
        this.#ready?.resolve();
        this.#ready = undefined;
        break;
      case "fatal":
        this.#die(fromWire(msg.error));
        break;
      case "state":
        this.#state = msg.state;
        this.#callbacks.notifyState?.(msg.state);
        break;
      case "netmap":
        this.#callbacks.notifyNetMap?.(JSON.parse(msg.json) as NetMap);
        break;
      case "browse":
        this.#callbacks.notifyBrowseToURL?.(msg.url);
        break;
      case "panic":
        this.#callbacks.notifyPanicRecover?.(msg.message);
        this.#die(ipnError("panic", msg.message.split("\n")[0] ?? "the Go runtime panicked"));
        break;
      case "log":
        this.#logger?.(msg.line);
        break;
      case "reply": {
        const p = this.#calls.get(msg.id);
        this.#calls.delete(msg.id);
        if (msg.error) p?.reject(fromWire(msg.error));
        else p?.resolve();
        break;
      }
      case "data": {
        // Flow control: the Worker's credit comes back once onData is done with the bytes,
        // at once, or when the Promise it returned settles (openTerminal: once xterm.js parsed them).
        const { sid } = msg;
        const bytes = msg.data.byteLength;
        const ack = () => this.#post({ t: "ack", sid, bytes });
        let r: unknown;
        try {
          r = this.#sessions.get(sid)?.onData(new Uint8Array(msg.data));
        } finally {
          if (typeof (r as PromiseLike<void> | undefined)?.then === "function") (r as PromiseLike<void>).then(ack, ack);
          else ack();
        }
        break;
      }
      case "banner":
        this.#sessions.get(msg.sid)?.onBanner?.(msg.text, bannerCheckURL(msg.text, this.#controlURL));
        break;
      case "progress":
        this.#sessions.get(msg.sid)?.onConnectionProgress?.(msg.text);
        break;
      case "connected":
        this.#sessions.get(msg.sid)?.onConnected?.();
        break;
      case "wrote":
        this.#sessions.get(msg.sid)?.onWritten?.(msg.bytes);
        break;
      case "listed": {
        const p = this.#lists.get(msg.id);
        this.#lists.delete(msg.id);
        if (msg.error) p?.reject(fromWire(msg.error));
        else p?.resolve(msg.json ?? "{}");
        break;
      }
      case "xstart":
        this.#transfers.get(msg.xid)?.onStart?.(msg.size, msg.mtime);
        break;
      case "xopen":
        this.#transfers.get(msg.xid)?.onOpen?.(msg.hidden, msg.from);
        break;
      case "xdata":
        this.#transfers.get(msg.xid)?.onData?.(new Uint8Array(msg.data));
        break;
      case "xack":
        this.#transfers.get(msg.xid)?.onAck?.(msg.bytes);
        break;
      case "xdone": {
        const t = this.#transfers.get(msg.xid);
        this.#transfers.delete(msg.xid);
        t?.onDone(msg.error ? fromWire(msg.error) : undefined);
        break;
      }
      case "done": {
        const s = this.#sessions.get(msg.sid);
        this.#sessions.delete(msg.sid);
        // Its transfers end with it, with its error (a dropped connection, not "canceled").
        const err = msg.error ? fromWire(msg.error) : ipnError("closed", "the session has ended");
        for (const [xid, t] of this.#transfers) {
          if (t.sid !== msg.sid) continue;
          this.#transfers.delete(xid);
          t.onDone(err);
        }
        s?.onDone?.(msg.exitCode, msg.error ? fromWire(msg.error) : undefined);
        break;
      }
    }
  }
}
