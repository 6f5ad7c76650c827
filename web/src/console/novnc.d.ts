// The part of noVNC's RFB (@novnc/novnc, plain JavaScript) the console uses.
declare module "@novnc/novnc" {
  export default class RFB extends EventTarget {
    /** channel: a WebSocket, or an object shaped like one (send, close, binaryType, on*, protocol, readyState). */
    constructor(target: HTMLElement, channel: unknown, options?: { shared?: boolean });
    scaleViewport: boolean;
    resizeSession: boolean;
    focusOnClick: boolean;
    disconnect(): void;
    focus(): void;
  }
}
