package controlws

import (
	"context"
	"errors"
	"net"

	"tsconnect/wsconn"
)

// nativeDial stands in for the native build's dialer: the browser resolves names and
// connects, and the js build links no HTTP client, so the caller passes a GET built on fetch.
type nativeDial struct{}

func newNativeDial(*net.Resolver) *nativeDial { return &nativeDial{} }

func (*nativeDial) get(context.Context, string) ([]byte, error) {
	return nil, errors.New("DialOptions.HTTPGet is required under GOOS=js unless ServerKey is set")
}

func (*nativeDial) ws(ctx context.Context, url string, maxMessage int64) (net.Conn, error) {
	return wsconn.DialLimit(ctx, url, "", maxMessage)
}
