// Messages between the page (index.ts) and the Worker running the Go runtime (worker.ts).
// Terminal data travels as transferred ArrayBuffers, never strings.

import type { IPNState } from "../types/index.js";

/** An error as it crosses postMessage. */
export interface WireError {
  message: string;
  code: string;
}

/** Page → Worker. */
export type ToWorker =
  | { t: "init"; module: WebAssembly.Module; config: { controlURL: string; authKey: string; hostname: string } }
  | { t: "run" }
  | { t: "call"; id: number; method: "login" | "logout" }
  | { t: "ssh"; sid: number; host: string; user: string; rows: number; cols: number; command?: string }
  | { t: "write"; sid: number; data: ArrayBuffer }
  /** The page is done with one data message (bytes long): flow-control credit back, one per message. */
  | { t: "ack"; sid: number; bytes: number }
  | { t: "resize"; sid: number; rows: number; cols: number }
  | { t: "close"; sid: number }
  /** A TCP stream (ipn.dial): write, ack and close as for a session; "closewrite" half-closes. */
  | { t: "dial"; sid: number; host: string; port: number }
  | { t: "closewrite"; sid: number }
  /** File transfer (tsconnect-files.wasm, loaded once with the first one). */
  | { t: "files-module"; module: WebAssembly.Module }
  | { t: "list"; sid: number; id: number; path: string }
  /** offset, size, mtime: continue an interrupted download of a file still of that size and mtime. */
  | { t: "download"; sid: number; xid: number; path: string; offset?: number; size?: number; mtime?: number }
  /** resume, size: continue an interrupted upload (of a file of size bytes) in its hidden file. */
  | { t: "upload"; sid: number; xid: number; path: string; overwrite: boolean; mode: number; resume?: string; size?: number }
  /** The page took one xdata message (bytes long) of a download. */
  | { t: "xack"; xid: number; bytes: number }
  | { t: "xwrite"; xid: number; data: ArrayBuffer }
  | { t: "xend"; xid: number }
  | { t: "xcancel"; xid: number };

/** Worker → page. */
export type FromWorker =
  | { t: "ready" }
  | { t: "fatal"; error: WireError }
  | { t: "state"; state: IPNState }
  | { t: "netmap"; json: string }
  | { t: "browse"; url: string }
  | { t: "panic"; message: string }
  | { t: "log"; line: string }
  | { t: "reply"; id: number; error?: WireError }
  | { t: "data"; sid: number; data: ArrayBuffer }
  | { t: "banner"; sid: number; text: string }
  | { t: "progress"; sid: number; text: string }
  | { t: "connected"; sid: number }
  /** A stream's write messages (bytes in all) went to the connection: send credit for the page. */
  | { t: "wrote"; sid: number; bytes: number }
  | { t: "done"; sid: number; exitCode: number; error?: WireError }
  | { t: "listed"; id: number; json?: string; error?: WireError }
  | { t: "xstart"; xid: number; size: number; mtime: number }
  /** An upload's hidden file is open; the page sends its bytes from offset from. */
  | { t: "xopen"; xid: number; hidden: string; from: number }
  | { t: "xdata"; xid: number; data: ArrayBuffer }
  /** An upload's bytes went to the SSH channel: window credit for the page. */
  | { t: "xack"; xid: number; bytes: number }
  | { t: "xdone"; xid: number; error?: WireError };

/** The global the wasm installs in its Worker (wasm/bridge_js.go). */
export interface GoGlobal {
  version: string;
  newIPN(config: { controlURL: string; authKey: string; hostname: string }): GoIPN | Error;
}

/** newIPN's result. Callbacks are called synchronously from Go and must not call back into Go. */
export interface GoIPN {
  run(notify: {
    notifyState(state: string): void;
    notifyNetMap(json: string): void;
    notifyBrowseToURL(url: string): void;
    notifyPanicRecover(message: string): void;
    notifyLog(line: string): void;
  }): void;
  login(): Promise<void>;
  logout(): Promise<void>;
  ssh(
    host: string,
    user: string,
    opts: {
      rows: number;
      cols: number;
      command?: string;
      onData(data: Uint8Array): void;
      onBanner(text: string): void;
      onProgress(text: string): void;
      onConnected(): void;
      onDone(exitCode: number, error: (Error & { code?: string }) | null): void;
    },
  ): GoSession;
  dial(host: string, port: number, opts: GoStreamOptions): GoSession;
}

/** dial's callbacks: a session's, plus the write credit. */
export interface GoStreamOptions {
  onData(data: Uint8Array): void;
  onConnected(): void;
  onWritten(bytes: number): void;
  onDone(exitCode: number, error: (Error & { code?: string }) | null): void;
}

/** ssh's result; its methods are released after onDone. */
export interface GoSession {
  /** Opens an SFTP channel on the session's connection, a session handle of its own. */
  sftp(opts: { onData(data: Uint8Array): void; onDone(exitCode: number, error: (Error & { code?: string }) | null): void }): GoSession;
  write(data: Uint8Array): void;
  /** Returns output credit: at most the wasm's OutputWindow bytes go unacknowledged. */
  ack(bytes: number): void;
  resize(rows: number, cols: number): void;
  close(): void;
  /** Ends the remote's input once what was written has gone (a stream's half-close). */
  closeWrite(): void;
}

/** The global tsconnect-files.wasm installs (wasmfiles/bridge_js.go). */
export interface GoFilesGlobal {
  version: string;
  open(channel: { write(data: Uint8Array): void; ack(bytes: number): void; close(): void }): GoFiles;
}

type GoError = (Error & { code?: string }) | null;

/** File transfer on one SFTP channel. */
export interface GoFiles {
  deliver(data: Uint8Array): void;
  end(error: GoError): void;
  close(): void;
  list(path: string): Promise<string>;
  download(
    path: string,
    cb: {
      offset?: number;
      size?: number;
      mtime?: number;
      onStart(size: number, mtime: number): void;
      onData(data: Uint8Array): void;
      onDone(error: GoError): void;
    },
  ): GoTransfer;
  upload(
    path: string,
    opts: {
      overwrite: boolean;
      mode: number;
      resume?: string;
      size?: number;
      onOpen(hidden: string, from: number): void;
      onAck(bytes: number): void;
      onDone(error: GoError): void;
    },
  ): GoTransfer;
}

/** A download or upload. */
export interface GoTransfer {
  ack(bytes: number): void;
  write(data: Uint8Array): void;
  end(): void;
  cancel(): void;
}

/** Converts any thrown value to a WireError. */
export function toWire(e: unknown, fallbackCode = "internal"): WireError {
  if (e instanceof Error) {
    const code = (e as Error & { code?: unknown }).code;
    return { message: e.message, code: typeof code === "string" && code !== "" ? code : fallbackCode };
  }
  return { message: String(e), code: fallbackCode };
}
