// Package tcptest serves TCP listeners in tests: each connection handled in its own goroutine
// until the test ends.
package tcptest

import (
	"net"
	"testing"
)

// Serve runs handle for each connection ln accepts (closing it after) until the test ends,
// when ln is closed.
func Serve(t testing.TB, ln net.Listener, handle func(net.Conn)) {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
}

// Loopback listens on a free loopback port and serves it with handle; it returns the address.
func Loopback(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	Serve(t, ln, handle)
	return ln.Addr().String()
}
