//go:build !js

package derpws

import (
	"context"
	"net"

	"github.com/coder/websocket"
)

// wsConn adapts a WebSocket to the byte stream DERP runs on: binary messages concatenated,
// so a frame may span messages and a message may hold several frames.
type wsConn struct {
	net.Conn
	wc     *websocket.Conn
	cancel context.CancelFunc
}

func newWSConn(wc *websocket.Conn) *wsConn {
	ctx, cancel := context.WithCancel(context.Background())
	return &wsConn{Conn: websocket.NetConn(ctx, wc, websocket.MessageBinary), wc: wc, cancel: cancel}
}

// Close closes at once, without the close handshake, which would wait seconds for a peer that
// stopped reading.
func (c *wsConn) Close() error {
	c.cancel()
	return c.wc.CloseNow()
}
