//go:build !js

package controlws

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"tsconnect/internal/testdns"
	"tsconnect/key"
)

// TestDialNameOfReplicas: a control URL whose host name resolves to two replicas (one
// server key, one port, 127.0.0.2 and 127.0.0.1) reaches the first; with it killed, the
// client's connection ends and its next Dial reaches the other within 2 s.
func TestDialNameOfReplicas(t *testing.T) {
	k := key.NewPrivate()
	lnA, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2 (Linux loopback answers all of 127/8): %v", err)
	}
	port := lnA.Addr().(*net.TCPAddr).Port
	lnB, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		lnA.Close()
		t.Skipf("port %d taken on 127.0.0.1: %v", port, err)
	}
	a := startTestServerOn(supported, k, lnA)
	t.Cleanup(a.Close)
	b := startTestServerOn(supported, k, lnB)
	t.Cleanup(b.Close)
	dns := testdns.Start(t, map[string][]netip.Addr{
		"control.test": {netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.1")},
	})
	opts := DialOptions{ServerURL: fmt.Sprintf("http://control.test:%d", port), MachineKey: key.NewPrivate(), Resolver: dns.Resolver()}
	accepted := func(s *testServer, name string) {
		t.Helper()
		select {
		case err := <-s.acceptEv:
			if err != nil {
				t.Fatalf("replica %s refused the client: %v", name, err)
			}
		case <-time.After(10 * time.Second): // a hang guard
			t.Fatalf("replica %s accepted no connection; want the client's", name)
		}
	}
	c := dial(t, a, opts)
	accepted(a, "A")
	a.Close() // as kill -9: its port refuses from now on
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the client's connection did not end with its replica")
	}
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c2, err := Dial(ctx, opts)
	if err != nil {
		t.Fatalf("Dial with replica A killed: %v; want replica B", err)
	}
	defer c2.Close()
	if took := time.Since(t0); took > 2*time.Second {
		t.Errorf("reaching replica B took %v; want under 2 s", took)
	}
	accepted(b, "B")
}
