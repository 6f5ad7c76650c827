// The page side of the IPN API: loads the wasm, starts one Worker per IPN and turns the
// Worker's messages back into the callbacks and promises of types/index.d.ts.

import type * as API from "../types/index.js";
import type { IPN, IPNCallbacks, IPNConfig, IPNError, IPNState, NetMap, SSHOptions, SSHSession } from "../types/index.js";
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
  const worker = newWorker(`tsconnect-${++ipnCount}`);
  const ipn = new WorkerIPN(worker, config.controlURL, config.logger);
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
  #sessions = new Map<number, SSHOptions>();
  #ready: Pending | undefined;
  #dead: IPNError | undefined;

  constructor(worker: Worker, controlURL: string, logger?: (line: string) => void) {
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
      case "done": {
        const s = this.#sessions.get(msg.sid);
        this.#sessions.delete(msg.sid);
        s?.onDone?.(msg.exitCode, msg.error ? fromWire(msg.error) : undefined);
        break;
      }
    }
  }
}
