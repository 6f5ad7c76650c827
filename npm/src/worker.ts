// The dedicated Worker of one IPN: it runs the Go runtime (tsconnect.wasm) and relays
// between the page's messages and the wasm's global, globalThis.__tsconnect. Built as a
// classic-worker IIFE together with wasm_exec.js and started from a Blob URL.

import "../build/wasm_exec.js";
import type { IPNState } from "../types/index.js";
import type { FromWorker, GoFiles, GoFilesGlobal, GoGlobal, GoIPN, GoSession, GoTransfer, ToWorker } from "./protocol.js";
import { toWire } from "./protocol.js";

const scope = self as unknown as {
  postMessage(msg: FromWorker, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
  __tsconnect?: GoGlobal;
  __tsconnectFiles?: GoFilesGlobal;
};

const postNow = (msg: FromWorker, transfer?: Transferable[]) => scope.postMessage(msg, transfer ?? []);

// Terminal output is coalesced, without timers: a session has at most maxUnacked data messages
// in the page not yet acknowledged; while it has that many, Go's chunks (often one WireGuard
// packet's worth per run of Go) pile up here and go as one message when an acknowledgement comes
// (Nagle's rule, clocked by how fast the terminal parses). With fewer in flight they go once Go
// pauses (a microtask runs only then), so an echo is never held back. Go's own flow-control
// window (wasm/flow.go) bounds what can pile up. Any other message first sends the data before it.
const maxUnacked = 2;
const outbox = new Map<number, { chunks: Uint8Array[]; bytes: number; unacked: number }>();
let flushQueued = false;

function box(sid: number) {
  let b = outbox.get(sid);
  if (!b) outbox.set(sid, (b = { chunks: [], bytes: 0, unacked: 0 }));
  return b;
}

function sendData(sid: number) {
  const b = outbox.get(sid);
  if (!b || b.bytes === 0) return;
  let data = b.chunks[0] as Uint8Array;
  if (b.chunks.length > 1) {
    data = new Uint8Array(b.bytes);
    let at = 0;
    for (const c of b.chunks) {
      data.set(c, at);
      at += c.length;
    }
  }
  b.chunks = [];
  b.bytes = 0;
  b.unacked++;
  const buf = data.buffer as ArrayBuffer;
  postNow({ t: "data", sid, data: buf }, [buf]);
}

/** Sends what may go now: all of it when force (another message must follow the data). */
function flushData(force = false) {
  flushQueued = false;
  for (const [sid, b] of outbox) if (force || b.unacked < maxUnacked) sendData(sid);
}

function queueData(sid: number, data: Uint8Array) {
  const b = box(sid);
  b.chunks.push(data);
  b.bytes += data.length;
  if (b.unacked < maxUnacked && !flushQueued) {
    flushQueued = true;
    queueMicrotask(() => flushData());
  }
}

/** The page acknowledged one data message of sid. */
function dataAcked(sid: number) {
  const b = outbox.get(sid);
  if (!b) return;
  b.unacked = Math.max(b.unacked - 1, 0);
  if (b.unacked < maxUnacked) sendData(sid);
}

const post = (msg: FromWorker, transfer?: Transferable[]) => {
  flushData(true);
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

// File transfer: tsconnect-files.wasm runs beside the main wasm in this Worker, a second Go
// runtime loaded with the first transfer; each session gets one SFTP channel from the main
// wasm (session.sftp), whose bytes the two wasms pass each other through here.
let filesGo: Promise<GoFilesGlobal> | undefined;
const fileSessions = new Map<number, GoFiles>();
const transfers = new Map<number, GoTransfer>();
/** The session of each running transfer, and those ended with their session (Go's own end of them is not sent). */
const transferSession = new Map<number, number>();
const endedWithSession = new Set<number>();
// Messages for a transfer that is still starting (the wasm loading, the channel opening),
// replayed once it runs; the page sends at most one window of upload bytes ahead.
const starting = new Map<number, ToWorker[]>();

async function startFiles(module: WebAssembly.Module): Promise<GoFilesGlobal> {
  const go = new Go();
  const instance = await WebAssembly.instantiate(module, go.importObject);
  void go.run(instance).then(() => post({ t: "panic", message: `the file-transfer Go runtime exited\n${recent.join("\n")}` }));
  const api = scope.__tsconnectFiles;
  if (!api)
    throw Object.assign(new Error("tsconnect-files.wasm did not install globalThis.__tsconnectFiles"), { code: "wasm_load_failed" });
  return api;
}

/** The session's file transfer, opening its SFTP channel on first use. */
async function filesOf(sid: number): Promise<GoFiles> {
  const api = await (filesGo ?? Promise.reject(Object.assign(new Error("the file-transfer wasm was not loaded"), { code: "internal" })));
  let fx = fileSessions.get(sid);
  if (fx) return fx;
  const s = sessions.get(sid);
  if (!s) throw Object.assign(new Error("the session has ended"), { code: "closed" });
  let h: GoFiles | undefined;
  const ch = s.sftp({
    onData: (data) => h?.deliver(data),
    onDone: (_code, error) => {
      h?.end(error);
      if (fileSessions.get(sid) === h) fileSessions.delete(sid);
    },
  });
  h = api.open({ write: (d) => ch.write(d), ack: (n) => ch.ack(n), close: () => ch.close() });
  fileSessions.set(sid, h);
  return h;
}

function startTransfer(xid: number, sid: number, start: (fx: GoFiles) => GoTransfer) {
  starting.set(xid, []);
  filesOf(sid).then(
    (fx) => {
      const queued = starting.get(xid) ?? [];
      starting.delete(xid);
      transfers.set(xid, start(fx));
      transferSession.set(xid, sid);
      for (const m of queued) handleFiles(m);
    },
    (e: unknown) => {
      starting.delete(xid);
      post({ t: "xdone", xid, error: toWire(e) });
    },
  );
}

/** The running transfer msg is for, or undefined after queueing msg for a starting one. */
function transferFor(msg: ToWorker & { xid: number }): GoTransfer | undefined {
  const q = starting.get(msg.xid);
  if (q) q.push(msg);
  return transfers.get(msg.xid);
}

const xdone = (xid: number) => (error: (Error & { code?: string }) | null) => {
  transfers.delete(xid);
  transferSession.delete(xid);
  if (endedWithSession.delete(xid)) return;
  post({ t: "xdone", xid, ...(error ? { error: toWire(error) } : {}) });
};

function handleFiles(msg: ToWorker) {
  switch (msg.t) {
    case "files-module":
      filesGo ??= startFiles(msg.module);
      filesGo.catch((e: unknown) => post({ t: "log", line: `tsconnect-files.wasm: ${String(e)}` }));
      break;
    case "list":
      filesOf(msg.sid)
        .then((fx) => fx.list(msg.path))
        .then(
          (json) => post({ t: "listed", id: msg.id, json }),
          (e: unknown) => post({ t: "listed", id: msg.id, error: toWire(e) }),
        );
      break;
    case "download": {
      const xid = msg.xid;
      startTransfer(xid, msg.sid, (fx) =>
        fx.download(msg.path, {
          ...(msg.offset ? { offset: msg.offset, size: msg.size ?? 0, mtime: msg.mtime ?? 0 } : {}),
          onStart: (size, mtime) => post({ t: "xstart", xid, size, mtime }),
          onData: (data) => {
            const buf = data.buffer as ArrayBuffer;
            postNow({ t: "xdata", xid, data: buf }, [buf]);
          },
          onDone: xdone(xid),
        }),
      );
      break;
    }
    case "upload": {
      const xid = msg.xid;
      startTransfer(xid, msg.sid, (fx) =>
        fx.upload(msg.path, {
          overwrite: msg.overwrite,
          mode: msg.mode,
          ...(msg.resume ? { resume: msg.resume, size: msg.size ?? 0 } : {}),
          onOpen: (hidden, from) => post({ t: "xopen", xid, hidden, from }),
          onAck: (bytes) => postNow({ t: "xack", xid, bytes }),
          onDone: xdone(xid),
        }),
      );
      break;
    }
    case "xack":
      transferFor(msg)?.ack(msg.bytes);
      break;
    case "xwrite":
      transferFor(msg)?.write(new Uint8Array(msg.data));
      break;
    case "xend":
      transferFor(msg)?.end();
      break;
    case "xcancel":
      transferFor(msg)?.cancel();
      break;
  }
}

/** The callbacks a terminal session and a stream share: data, connected, done. */
function sessionCallbacks(sid: number) {
  return {
    onData: (data: Uint8Array) => queueData(sid, data),
    onConnected: () => post({ t: "connected", sid }),
    onDone: (exitCode: number, error: (Error & { code?: string }) | null) => {
      sessions.delete(sid);
      // Its transfers end with the session's error (a dropped connection, not Go's "canceled" as it closes them).
      for (const [xid, of] of transferSession) {
        if (of !== sid) continue;
        transferSession.delete(xid);
        endedWithSession.add(xid);
        post({ t: "xdone", xid, error: error ? toWire(error) : { code: "closed", message: "the session has ended" } });
      }
      fileSessions.get(sid)?.close();
      fileSessions.delete(sid);
      post({ t: "done", sid, exitCode, ...(error ? { error: toWire(error) } : {}) });
      outbox.delete(sid);
    },
  };
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
        ...(msg.command ? { command: msg.command } : {}),
        ...sessionCallbacks(sid),
        onBanner: (text) => post({ t: "banner", sid, text }),
        onProgress: (text) => post({ t: "progress", sid, text }),
      });
      sessions.set(sid, s);
      break;
    }
    case "dial": {
      const sid = msg.sid;
      const s = ipn.dial(msg.host, msg.port, {
        ...sessionCallbacks(sid),
        onWritten: (bytes) => postNow({ t: "wrote", sid, bytes }),
      });
      sessions.set(sid, s);
      break;
    }
    case "closewrite":
      sessions.get(msg.sid)?.closeWrite();
      break;
    case "write":
      sessions.get(msg.sid)?.write(new Uint8Array(msg.data));
      break;
    case "ack":
      dataAcked(msg.sid);
      sessions.get(msg.sid)?.ack(msg.bytes);
      break;
    case "resize":
      sessions.get(msg.sid)?.resize(msg.rows, msg.cols);
      break;
    case "close":
      sessions.get(msg.sid)?.close();
      break;
    default:
      handleFiles(msg);
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
