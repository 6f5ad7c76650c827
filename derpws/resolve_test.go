//go:build !js

package derpws

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"tsconnect/internal/testdns"
	"tsconnect/key"
)

// TestClientNameOfSeveralAddresses: a relay URL whose host name the client's Resolver
// answers with two addresses, the first refusing (a replica killed with kill -9) and the
// second serving the relay, reaches the relay there, over both transports: a packet sent
// through it reaches a client connected to that relay by its IP address.
func TestClientNameOfSeveralAddresses(t *testing.T) {
	for _, ws := range []bool{false, true} {
		t.Run(fmt.Sprintf("websocket=%v", ws), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s, hs := serveOn(ln, &ServerOptions{Logf: t.Logf})
			t.Cleanup(func() { s.Close(); hs.Close() })
			port := ln.Addr().(*net.TCPAddr).Port
			if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.2:%d", port)); err == nil {
				c.Close()
				t.Skipf("127.0.0.2:%d answers; want it refusing", port)
			}
			dns := testdns.Start(t, map[string][]netip.Addr{
				"relay.test": {netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.1")},
			})
			to, _ := newClient(t, fmt.Sprintf("http://127.0.0.1:%d/derp", port), ws)
			to.Start()
			priv := key.NewPrivate()
			from := NewClient(priv, fmt.Sprintf("http://relay.test:%d/derp", port), &ClientOptions{
				Logf: t.Logf, UseWebSocket: ws, Resolver: dns.Resolver(),
			})
			t.Cleanup(func() { from.Close() })
			if err := from.Send(to.PublicKey(), []byte("by name")); err != nil {
				t.Fatal(err)
			}
			src, pkt := recv(t, to)
			if src != priv.Public() || string(pkt) != "by name" {
				t.Fatalf("got %q from %s; want %q from the client that dialled the name", pkt, src.ShortString(), "by name")
			}
		})
	}
}
