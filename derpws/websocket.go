//go:build !js

package derpws

import (
	"context"
	"net"
	"strings"

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

// dialWebSocket opens a WebSocket to the relay at u (http, https, ws or wss).
func dialWebSocket(ctx context.Context, u string) (net.Conn, error) {
	wc, _, err := websocket.Dial(ctx, wsURL(u), wsDialOptions())
	if err != nil {
		return nil, err
	}
	if wc.Subprotocol() != Subprotocol {
		wc.CloseNow()
		return nil, errNoSubprotocol
	}
	return newWSConn(wc), nil
}

// wsURL turns an http(s) URL into the ws(s) URL of the same place.
func wsURL(u string) string {
	switch {
	case strings.HasPrefix(u, "http://"):
		return "ws://" + u[len("http://"):]
	case strings.HasPrefix(u, "https://"):
		return "wss://" + u[len("https://"):]
	}
	return u
}
