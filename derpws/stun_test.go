//go:build !js

package derpws

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestSTUN asks a relay's STUN server for this socket's address and gets it back.
func TestSTUN(t *testing.T) {
	srv, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ServeSTUN(srv, t.Logf) }()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Junk first: it must be dropped without ending the server.
	c.WriteTo([]byte("not stun"), srv.LocalAddr())
	tx, req, err := STUNRequest()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteTo(req, srv.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := ParseSTUNResponse(buf[:n], tx)
	want := c.LocalAddr().(*net.UDPAddr).AddrPort()
	if !ok || got != netip.AddrPortFrom(want.Addr().Unmap(), want.Port()) {
		t.Fatalf("STUN says %v (ok %v), want %v", got, ok, want)
	}
	if _, ok := ParseSTUNResponse(buf[:n], [12]byte{1}); ok {
		t.Fatal("an answer to another transaction was accepted")
	}
	srv.Close()
	if err := <-done; err != nil {
		t.Fatalf("ServeSTUN after close: %v", err)
	}
}
