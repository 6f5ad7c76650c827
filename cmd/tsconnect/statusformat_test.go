package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"tsconnect/agent"
	"tsconnect/controlws"
	"tsconnect/key"
)

// A peer whose OS, name, tags and owner carry terminal escapes and newlines cannot forge a
// line of `tsconnect status`: the output has one line a node, no ESC, no carriage return.
func TestStatusPeerEscapesCannotForgeALine(t *testing.T) {
	forged := "linux\r\n100.64.0.66  trusted-db  admin@corp  linux  online ssh\x1b[2K\x1b]0;pwned\a"
	st := agent.Status{
		State: "running",
		Self:  &controlws.Node{Name: "me", Addresses: []netip.Prefix{netip.MustParsePrefix("100.64.0.1/32")}, User: 1, OS: "linux"},
		Peers: []controlws.Node{
			{Name: "evil\x1b[1A", Addresses: []netip.Prefix{netip.MustParsePrefix("100.64.0.2/32")}, User: 2, OS: forged, Online: true},
			{Name: "tagged", Addresses: []netip.Prefix{netip.MustParsePrefix("100.64.0.3/32")}, Tags: []string{"tag:a\nfake"}, OS: "\u202elinux"},
		},
		Users: []controlws.UserProfile{{ID: 1, LoginName: "me@example.com"}, {ID: 2, LoginName: "bob\x1b[31m@example.com"}},
	}
	var b strings.Builder
	if err := writeStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("status printed %d lines for 3 nodes:\n%s", len(lines), out)
	}
	if strings.ContainsAny(out, "\x1b\r\a\u202e") {
		t.Errorf("status output carries raw control characters: %q", out)
	}
	for _, want := range []string{`linux\x0d\x0a100.64.0.66`, `\x1b[2K\x1b]0;pwned\x07`, `evil\x1b[1A`, `bob\x1b[31m@example.com`, `tag:a\x0afake`, `\u202elinux`} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks the escaped form %s:\n%s", want, out)
		}
	}
	if !strings.HasPrefix(lines[1], "100.64.0.2 ") || !strings.HasPrefix(lines[2], "100.64.0.3 ") {
		t.Errorf("peer lines out of place:\n%s", out)
	}
}

// A peer past its key expiry is flagged, and the agent's warning about its own key is a
// line of its own after the table.
func TestStatusShowsKeyExpiry(t *testing.T) {
	st := agent.Status{
		State: "running",
		Self:  &controlws.Node{Name: "me", Addresses: []netip.Prefix{netip.MustParsePrefix("100.64.0.1/32")}},
		Peers: []controlws.Node{
			{Name: "old", Addresses: []netip.Prefix{netip.MustParsePrefix("100.64.0.2/32")}, KeyExpiry: time.Now().Add(-time.Minute)},
			{Name: "new", Addresses: []netip.Prefix{netip.MustParsePrefix("100.64.0.3/32")}, KeyExpiry: time.Now().Add(time.Hour)},
		},
		KeyWarning: "this node's key expires in 1h0m0s (at 2030-01-02T03:04:05Z): re-authenticate before then (tsconnect login)",
	}
	var b strings.Builder
	if err := writeStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 4 || !strings.HasSuffix(lines[1], "key-expired") || strings.Contains(lines[2], "key-expired") ||
		lines[3] != "warning: "+st.KeyWarning {
		t.Errorf("status:\n%s", b.String())
	}
}

// Each peer's path shows: direct with its endpoint, or relayed with its region, and the
// last round trip.
func TestStatusShowsPaths(t *testing.T) {
	k1, k2 := key.NewPrivate().Public(), key.NewPrivate().Public()
	st := agent.Status{
		State: "running",
		Self:  &controlws.Node{Name: "me", Addresses: []netip.Prefix{netip.MustParsePrefix("100.64.0.1/32")}},
		Peers: []controlws.Node{
			{Name: "near", Key: k1, Addresses: []netip.Prefix{netip.MustParsePrefix("100.64.0.2/32")}, Online: true},
			{Name: "far", Key: k2, Addresses: []netip.Prefix{netip.MustParsePrefix("100.64.0.3/32")}, Online: true},
		},
		Paths: map[string]agent.PeerPath{
			k1.String(): {Direct: "127.0.0.1:41641", Region: 1, RegionCode: "tsc", RTTMillis: 0.42},
			k2.String(): {Region: 1, RegionCode: "tsc\x1b[2J", RTTMillis: 12.3},
		},
	}
	var b strings.Builder
	if err := writeStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[1], "online  direct 127.0.0.1:41641 0.4ms") ||
		!strings.HasSuffix(lines[2], `online  relay DERP(tsc\x1b[2J) 12ms`) || strings.Contains(lines[0], "relay") {
		t.Errorf("status:\n%s", b.String())
	}
}
