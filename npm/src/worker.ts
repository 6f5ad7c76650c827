// The dedicated Worker of one IPN: it runs the Go runtime (tsconnect.wasm) and relays
// between the page's messages and the wasm's global, globalThis.__tsconnect. Built as a
// classic-worker IIFE together with wasm_exec.js and started from a Blob URL.

import "../build/wasm_exec.js";
import type { IPNState } from "../types/index.js";
import type { FromWorker, GoGlobal, GoIPN, GoSession, ToWorker } from "./protocol.js";
import { toWire } from "./protocol.js";

const scope = self as unknown as {
  postMessage(msg: FromWorker, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
  __tsconnect?: GoGlobal;
};

const postNow = (msg: FromWorker, transfer?: Transferable[]) => scope.postMessage(msg, transfer ?? []);

// Terminal output is coalesced: the chunks Go hands over while it runs (often a PTY read of
// 4 KiB each) go to the page as one message per session once Go pauses (a microtask runs only
// then), or sooner past coalesceLimit. Any other message first sends the data queued before it.
const coalesceLimit = 128 << 10;
const outbox = new Map<number, { chunks: Uint8Array[]; bytes: number }>();
let flushQueued = false;

function sendData(sid: number) {
  const box = outbox.get(sid);
  if (!box) return;
  outbox.delete(sid);
  let data = box.chunks[0] as Uint8Array;
  if (box.chunks.length > 1) {
    data = new Uint8Array(box.bytes);
    let at = 0;
    for (const c of box.chunks) {
      data.set(c, at);
      at += c.length;
    }
  }
  const buf = data.buffer as ArrayBuffer;
  postNow({ t: "data", sid, data: buf }, [buf]);
}

function flushData() {
  flushQueued = false;
  for (const sid of [...outbox.keys()]) sendData(sid);
}

function queueData(sid: number, data: Uint8Array) {
  let box = outbox.get(sid);
  if (!box) outbox.set(sid, (box = { chunks: [], bytes: 0 }));
  box.chunks.push(data);
  box.bytes += data.length;
  if (box.bytes >= coalesceLimit) sendData(sid);
  else if (!flushQueued) {
    flushQueued = true;
    queueMicrotask(flushData);
  }
}

const post = (msg: FromWorker, transfer?: Transferable[]) => {
  if (outbox.size > 0) flushData();
  postNow(msg, transfer);
};

// The last lines the Go runtime printed (wasm_exec.js writes them with console.log), so a
// crash report carries the panic message and stack.
const recent: string[] = [];
const consoleLog = console.log.bind(console);
console.log = (...args: unknown[]) => {
  recent.push(args.map(String).join(" "));
  if (recent.length > 60) recent.shift();
  consoleLog(...args);
};

let ipn: GoIPN | undefined;
const sessions = new Map<number, GoSession>();

async function init(module: WebAssembly.Module, config: { controlURL: string; authKey: string; hostname: string }) {
  const go = new Go();
  const instance = await WebAssembly.instantiate(module, go.importObject);
  // Go's main installs the global and then blocks; run resolves only if Go exits.
  void go.run(instance).then(() => {
    post({ t: "panic", message: `the Go runtime exited\n${recent.join("\n")}` });
  });
  const api = scope.__tsconnect;
  if (!api) throw Object.assign(new Error("tsconnect.wasm did not install globalThis.__tsconnect"), { code: "wasm_load_failed" });
  const made = api.newIPN(config);
  if (made instanceof Error) throw made;
  ipn = made;
}

function handle(msg: ToWorker, ipn: GoIPN) {
  switch (msg.t) {
    case "run":
      ipn.run({
        notifyState: (state) => post({ t: "state", state: state as IPNState }),
        notifyNetMap: (json) => post({ t: "netmap", json }),
        notifyBrowseToURL: (url) => post({ t: "browse", url }),
        notifyPanicRecover: (message) => post({ t: "panic", message }),
        notifyLog: (line) => post({ t: "log", line }),
      });
      break;
    case "call":
      ipn[msg.method]().then(
        () => post({ t: "reply", id: msg.id }),
        (e: unknown) => post({ t: "reply", id: msg.id, error: toWire(e) }),
      );
      break;
    case "ssh": {
      const sid = msg.sid;
      const s = ipn.ssh(msg.host, msg.user, {
        rows: msg.rows,
        cols: msg.cols,
        onData: (data) => queueData(sid, data),
        onBanner: (text) => post({ t: "banner", sid, text }),
        onProgress: (text) => post({ t: "progress", sid, text }),
        onConnected: () => post({ t: "connected", sid }),
        onDone: (exitCode, error) => {
          sessions.delete(sid);
          post({ t: "done", sid, exitCode, ...(error ? { error: toWire(error) } : {}) });
        },
      });
      sessions.set(sid, s);
      break;
    }
    case "write":
      sessions.get(msg.sid)?.write(new Uint8Array(msg.data));
      break;
    case "ack":
      sessions.get(msg.sid)?.ack(msg.bytes);
      break;
    case "resize":
      sessions.get(msg.sid)?.resize(msg.rows, msg.cols);
      break;
    case "close":
      sessions.get(msg.sid)?.close();
      break;
  }
}

scope.onmessage = (e) => {
  const msg = e.data;
  if (msg.t === "init") {
    init(msg.module, msg.config).then(
      () => post({ t: "ready" }),
      (err: unknown) => post({ t: "fatal", error: toWire(err, "wasm_load_failed") }),
    );
    return;
  }
  if (ipn) handle(msg, ipn);
};
