// The VNC window's drawing: noVNC's RFB on a TCP stream (ipn.dial to the machine's port 5900,
// see vncsession.ts). This module, with noVNC, is a chunk of its own, loaded only when someone
// opens VNC; it imports nothing of the console's bundle, so no code is shared with it.

import RFB from "@novnc/novnc";
import type { TCPStream } from "../../../npm/types/index.js";

/**
 * A WebSocket-shaped channel on a TCP stream, what noVNC's RFB takes instead of a URL: bytes
 * arrive as message events (the stream is read only as RFB handles them, so a slow page
 * holds the machine back), send queues a copy on the stream.
 */
export class StreamChannel {
  binaryType = "arraybuffer";
  protocol = "";
  readyState: "open" | "closed" = "open";
  onopen: ((e: Event) => void) | null = null;
  onmessage: ((e: { data: ArrayBuffer }) => void) | null = null;
  onerror: ((e: Event) => void) | null = null;
  onclose: ((e: { code: number; reason: string; wasClean: boolean }) => void) | null = null;
  #stream: TCPStream;
  #writer: WritableStreamDefaultWriter<Uint8Array>;

  constructor(stream: TCPStream) {
    this.#stream = stream;
    this.#writer = stream.writable.getWriter();
    void this.#read();
  }

  async #read() {
    let reason = "";
    try {
      const reader = this.#stream.readable.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        this.onmessage?.({ data: value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength) as ArrayBuffer });
      }
    } catch (e) {
      reason = e instanceof Error ? e.message : String(e);
      this.onerror?.(new Event("error"));
    }
    this.#closed(reason);
  }

  #closed(reason: string) {
    if (this.readyState === "closed") return;
    this.readyState = "closed";
    this.onclose?.({ code: reason ? 1006 : 1000, reason, wasClean: !reason });
  }

  send(data: ArrayBuffer | Uint8Array): void {
    if (this.readyState !== "open") return;
    // A copy: RFB reuses its send buffer at once.
    const bytes = data instanceof Uint8Array ? data.slice() : new Uint8Array(data.slice(0));
    this.#writer.write(bytes).catch(() => this.#closed("the connection failed"));
  }

  close(): void {
    this.#stream.close();
    this.#closed("");
  }
}

/** What drawVNC reports. */
export interface VNCCallbacks {
  onConnect(): void;
  onDisconnect(): void;
  onSecurityFailure(): void;
}

/** Draws the VNC server on stream into screen (noVNC scales it to fit). */
export function drawVNC(screen: HTMLElement, stream: TCPStream, cb: VNCCallbacks): { disconnect(): void } {
  const rfb = new RFB(screen, new StreamChannel(stream), { shared: true });
  rfb.scaleViewport = true;
  rfb.addEventListener("connect", () => cb.onConnect());
  rfb.addEventListener("disconnect", () => cb.onDisconnect());
  rfb.addEventListener("securityfailure", () => cb.onSecurityFailure());
  return rfb;
}
