//go:build !js

package controlws

import (
	"context"
	"net"

	"tsconnect/internal/dialaddrs"
	"tsconnect/internal/httpget"
	"tsconnect/wsconn"
)

// nativeDial is the key fetch and the WebSocket dial of the native build: both connect
// through a dialaddrs.Dialer with resolver r, so a control name that resolves to several
// replicas is tried at each address.
type nativeDial struct{ d dialaddrs.Dialer }

func newNativeDial(r *net.Resolver) *nativeDial { return &nativeDial{d: dialaddrs.Dialer{Resolver: r}} }

// get fetches url (the server key).
func (n *nativeDial) get(ctx context.Context, url string) ([]byte, error) {
	c := n.d.HTTPClient()
	defer c.CloseIdleConnections()
	return httpget.GetWith(ctx, c, url)
}

// ws opens the WebSocket at url.
func (n *nativeDial) ws(ctx context.Context, url string, maxMessage int64) (net.Conn, error) {
	c := n.d.HTTPClient()
	defer c.CloseIdleConnections()
	return wsconn.DialLimitClient(ctx, url, "", maxMessage, c)
}
