package engine_test

import (
	"context"
	"fmt"
	"io"
	"net/netip"

	"tsconnect/derpbind"
	"tsconnect/derpbind/memrelay"
	"tsconnect/engine"
	"tsconnect/key"
)

// Two nodes on an in-memory relay: one listens on its overlay address, the other dials it.
func Example() {
	hub := &memrelay.Hub{}
	newNode := func(addr string) (*engine.Engine, engine.Peer) {
		priv := key.NewPrivate()
		relay := hub.Client(priv.Public())
		e, err := engine.New(engine.Config{PrivateKey: priv, Bind: derpbind.New(relay, nil)})
		if err != nil {
			panic(err)
		}
		p := netip.MustParsePrefix(addr)
		e.SetAddresses([]netip.Prefix{p})
		return e, engine.Peer{Key: priv.Public(), AllowedIPs: []netip.Prefix{p}}
	}
	server, serverPeer := newNode("100.64.0.1/32")
	client, clientPeer := newNode("100.64.0.2/32")
	defer server.Close()
	defer client.Close()
	server.SetPeers([]engine.Peer{clientPeer})
	client.SetPeers([]engine.Peer{serverPeer})

	l, _ := server.ListenTCP(22)
	defer l.Close()
	go func() {
		c, _ := l.Accept()
		fmt.Fprintf(c, "hello, %v", c.RemoteAddr())
		c.Close()
	}()

	c, err := client.DialContext(context.Background(), "tcp", netip.MustParseAddrPort("100.64.0.1:22"))
	if err != nil {
		panic(err)
	}
	msg, _ := io.ReadAll(c)
	fmt.Println(string(msg[:len("hello, 100.64.0.2")]))
	// Output: hello, 100.64.0.2
}
