//go:build !js

package wsconn

import "testing"

// TestNative runs the checks against coder/websocket's native client.
func TestNative(t *testing.T) {
	srv := newTestServer(t)
	testConn(t, wsBase(srv), closedURL(t))
}
