package main

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"tsconnect/controlws"
)

// testEngine stands in for the node at the engine seam: Start returns startErr, Dial
// reaches the loopback SSH server (or fails with dialErr), NetMap returns nm.
type testEngine struct {
	startErr error
	dialErr  error
	server   string // the address of a loopback sshtest.Server
	nm       *controlws.NetworkMap

	mu        sync.Mutex
	loggedOut bool
	closed    bool
	dialed    []string
}

func (e *testEngine) Start(ctx context.Context) error { return e.startErr }

func (e *testEngine) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	e.mu.Lock()
	e.dialed = append(e.dialed, addr)
	e.mu.Unlock()
	if e.dialErr != nil {
		return nil, e.dialErr
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", e.server)
}

func (e *testEngine) NetMap() *controlws.NetworkMap { return e.nm }

func (e *testEngine) Logout(ctx context.Context) error {
	e.mu.Lock()
	e.loggedOut = true
	e.mu.Unlock()
	return nil
}

func (e *testEngine) Close() error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	return nil
}

// testMap holds one SSH peer "agent" pinned to hostKey, plus "nossh" and "nokey".
func testMap(hostKey string) *controlws.NetworkMap {
	pfx := func(s string) []netip.Prefix {
		var out []netip.Prefix
		for _, a := range strings.Fields(s) {
			out = append(out, netip.PrefixFrom(netip.MustParseAddr(a), netip.MustParseAddr(a).BitLen()))
		}
		return out
	}
	return &controlws.NetworkMap{
		Self:   controlws.Node{ID: 1, Name: "browser", Addresses: pfx("100.64.0.1")},
		Domain: "demo.tsconnect",
		Peers: []controlws.Node{
			{ID: 2, Name: "agent", Addresses: pfx("fd7a:115c:a1e0::2 100.64.0.2"), SSH: true, SSHHostKeys: []string{hostKey}},
			{ID: 3, Name: "nossh", Addresses: pfx("100.64.0.3")},
			{ID: 4, Name: "nokey", Addresses: pfx("100.64.0.4"), SSH: true},
		},
	}
}

// newTestIPN returns an IPN on eng; control lives at controlURL.
func newTestIPN(t *testing.T, eng *testEngine) *IPN {
	p, err := NewIPN(Config{ControlURL: "http://127.0.0.1:8080", AuthKey: "tskey-test"}, func(context.Context, string) ([]byte, error) {
		return nil, errors.New("no HTTP in this test")
	})
	if err != nil {
		t.Fatal(err)
	}
	p.newEng = func(Config, func(context.Context, string) ([]byte, error), *IPN) (engine, error) { return eng, nil }
	return p
}
