package node

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"tsconnect/controlws"
)

// TestResolveAddr: an address stays itself; a peer name is its IPv4 address when it has
// one, else its first; names not in the map, and a node without a map, are refused.
func TestResolveAddr(t *testing.T) {
	n, err := New(Options{ControlURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if _, err := n.ResolveAddr("b"); err == nil || !strings.Contains(err.Error(), "no network map") {
		t.Errorf("ResolveAddr before any map: %v; want an error saying there is no map", err)
	}
	n.nm = &controlws.NetworkMap{Domain: "demo.tsconnect", Peers: []controlws.Node{
		{Name: "b", Addresses: []netip.Prefix{netip.MustParsePrefix("fd7a:115c:a1e0::2/128"), netip.MustParsePrefix("100.64.0.2/32")}},
		{Name: "six", Addresses: []netip.Prefix{netip.MustParsePrefix("fd7a:115c:a1e0::6/128")}},
		{Name: "bare"},
	}}
	for host, want := range map[string]string{
		"100.64.0.9":       "100.64.0.9",
		"b":                "100.64.0.2",
		"b.demo.tsconnect": "100.64.0.2",
		"six":              "fd7a:115c:a1e0::6",
	} {
		if ip, err := n.ResolveAddr(host); err != nil || ip.String() != want {
			t.Errorf("ResolveAddr(%q) = %v, %v; want %s", host, ip, err, want)
		}
	}
	if _, err := n.ResolveAddr("c"); !errors.Is(err, ErrUnknownHost) {
		t.Errorf("ResolveAddr(c): %v; want ErrUnknownHost", err)
	}
	if _, err := n.ResolveAddr("bare"); err == nil || !strings.Contains(err.Error(), "no address") {
		t.Errorf("ResolveAddr(bare): %v; want an error saying it has no address", err)
	}
}

// TestBeforeStart: a node not started has nothing to listen or dial on, and refuses bad
// addresses and a missing control URL with errors naming them.
func TestBeforeStart(t *testing.T) {
	if _, err := New(Options{}); err == nil || !strings.Contains(err.Error(), "control URL") {
		t.Errorf("New without a control URL: %v", err)
	}
	n, err := New(Options{ControlURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if _, err := n.Listen(22); err == nil || !strings.Contains(err.Error(), "not started") {
		t.Errorf("Listen before Start: %v; want \"not started\"", err)
	}
	ctx := context.Background()
	for addr, want := range map[string]string{"100.64.0.2": "missing port", "100.64.0.2:ssh": `bad port "ssh"`, "100.64.0.2:22": "not started"} {
		if _, err := n.Dial(ctx, "tcp", addr); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Dial(%q) before Start: %v; want an error with %q", addr, err, want)
		}
	}
	if _, ok := n.MapCurrentAsOf(); ok {
		t.Error("MapCurrentAsOf is ok before the first map")
	}
}
