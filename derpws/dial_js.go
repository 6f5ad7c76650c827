//go:build js

package derpws

import (
	"bufio"
	"context"
	"net"

	"github.com/coder/websocket"
)

// dial opens a WebSocket to the relay, the only transport in a browser; coder/websocket's js
// build uses the browser's WebSocket, and http(s) URLs become ws(s).
func (c *Client) dial(ctx context.Context) (net.Conn, *bufio.Reader, error) {
	nc, err := dialWebSocket(ctx, c.url)
	if err != nil {
		return nil, nil, err
	}
	return nc, bufio.NewReaderSize(nc, readBufSize), nil
}

// wsDialOptions asks for the derp subprotocol. The browser negotiates compression itself; the
// relay declines it.
func wsDialOptions() *websocket.DialOptions {
	return &websocket.DialOptions{Subprotocols: []string{Subprotocol}}
}
