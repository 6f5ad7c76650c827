//go:build js

package derpws

import (
	"bufio"
	"context"
	"net"

	"tsconnect/wsconn"
)

// dial opens a WebSocket to the relay, the only transport in a browser, through wsconn's binding
// of the browser's WebSocket (http(s) URLs become ws(s)); the browser negotiates compression itself.
func (c *Client) dial(ctx context.Context) (net.Conn, *bufio.Reader, error) {
	nc, err := wsconn.Dial(ctx, c.url, Subprotocol)
	if err != nil {
		return nil, nil, err
	}
	return nc, bufio.NewReaderSize(nc, readBufSize), nil
}

// defaultHTTPGet refuses: the js build links no HTTP client, so callers pass one built on fetch.
func defaultHTTPGet(context.Context, string) ([]byte, error) { return nil, errNoHTTPGet }
