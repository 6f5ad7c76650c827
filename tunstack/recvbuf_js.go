package tunstack

// The receive buffer of a connection in the browser, fixed (no auto-tuning toward tcpBufMax).
// It bounds what a sender has in flight toward the page: the path's narrowest point is the
// Worker, which stops reading its WebSocket while it is busy, so the relay's per-client
// queue (derpws sendQueueBytes, 1 MiB) must hold a whole window, or the relay drops the
// burst and TCP's loss recovery holds a bulk download to 1–3 MiB/s (docs/architecture.md,
// "Browser terminal speed"). It also bounds what still draws after Ctrl-C.
const (
	recvBufDefault = 256 << 10
	recvBufMax     = 256 << 10
)
