package agent

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"tsconnect/controlws"
	"tsconnect/policy"
)

// The source node is alice's laptop at 127.0.0.1 (the test's SSH client dials from there);
// the destination is this machine, tagged server.
var (
	laptopAddr = netip.MustParsePrefix("127.0.0.1/32")
	serverAddr = netip.MustParsePrefix("127.0.0.2/32")
)

// sshPolicy is a policy whose only SSH rule lets alice in as users (e.g. "autogroup:nonroot").
func sshPolicy(users ...string) string {
	q := make([]string, len(users))
	for i, u := range users {
		q[i] = fmt.Sprintf("%q", u)
	}
	return `{
		"tagOwners": {"tag:server": ["alice@example.com"]},
		"acls": [{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:server:22"]}],
		"ssh": [{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:server"], "users": [` + strings.Join(q, ", ") + `]}],
	}`
}

// netMapFor compiles src for the server and returns its network map: alice's laptop is the
// one peer.
func netMapFor(t *testing.T, src string) *controlws.NetworkMap {
	t.Helper()
	p, err := policy.Parse("policy.hujson", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	laptop := policy.Node{ID: 1, Name: "laptop", User: "alice@example.com", Addresses: []netip.Prefix{laptopAddr}}
	server := policy.Node{ID: 2, Name: "server", Tags: []string{"tag:server"}, Addresses: []netip.Prefix{serverAddr}}
	nr := p.Compile(&policy.Network{Nodes: []policy.Node{laptop, server}}, server)
	return &controlws.NetworkMap{
		Self:     controlws.Node{ID: 2, Name: "server", Addresses: []netip.Prefix{serverAddr}, Tags: []string{"tag:server"}},
		Peers:    []controlws.Node{{ID: 1, Name: "laptop", User: 1, Addresses: []netip.Prefix{laptopAddr}}},
		Users:    []controlws.UserProfile{{ID: 1, LoginName: "alice@example.com"}},
		SSHRules: nr.SSH,
	}
}
