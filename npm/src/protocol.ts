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
  | { t: "close"; sid: number };

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
  | { t: "done"; sid: number; exitCode: number; error?: WireError };

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
}

/** ssh's result; its methods are released after onDone. */
export interface GoSession {
  write(data: Uint8Array): void;
  /** Returns output credit: at most the wasm's OutputWindow bytes go unacknowledged. */
  ack(bytes: number): void;
  resize(rows: number, cols: number): void;
  close(): void;
}

/** Converts any thrown value to a WireError. */
export function toWire(e: unknown, fallbackCode = "internal"): WireError {
  if (e instanceof Error) {
    const code = (e as Error & { code?: unknown }).code;
    return { message: e.message, code: typeof code === "string" && code !== "" ? code : fallbackCode };
  }
  return { message: String(e), code: fallbackCode };
}
