package console

import (
	"strings"
	"testing"

	"tsconnect/derpws"
)

// TestPolicyForRelays: the console's policy lets the browser's node reach the DERP map's
// relays that are not the server itself (HTTP for the probe, WebSocket for the relay), and
// a hostile host name in the map cannot add anything to the header.
func TestPolicyForRelays(t *testing.T) {
	self := "http://127.0.0.1:8080"
	m := &derpws.Map{Regions: map[int]*derpws.Region{
		1: {RegionID: 1, Nodes: []*derpws.Node{{Name: "1a", RegionID: 1, HostName: "127.0.0.1", DERPPort: 8080, InsecureForTests: true}}},
		2: {RegionID: 2, Nodes: []*derpws.Node{
			{Name: "2a", RegionID: 2, HostName: "relay.example.com"},
			{Name: "2b", RegionID: 2, HostName: "127.0.0.1", DERPPort: 3340, InsecureForTests: true},
			{Name: "2c", RegionID: 2, HostName: "evil.example; script-src *", DERPPort: 1},
		}},
	}}
	got := policyFor(m, self, nil)
	want := "connect-src 'self' http://127.0.0.1:3340 https://relay.example.com ws://127.0.0.1:3340 wss://relay.example.com;"
	if !strings.Contains(got, want) {
		t.Errorf("policy %q\nhas no %q", got, want)
	}
	if strings.Contains(got, "evil") || strings.Count(got, "script-src") != 1 {
		t.Errorf("a hostile relay host name got into the policy: %q", got)
	}
	if got := policyFor(&derpws.Map{Regions: map[int]*derpws.Region{1: m.Regions[1]}}, self, []string{self}); got != ContentSecurityPolicy {
		t.Errorf("policy with only the embedded relay = %q, want ContentSecurityPolicy", got)
	}
	if got := policyFor(nil, self, nil); got != ContentSecurityPolicy {
		t.Errorf("policy without a map = %q", got)
	}
}

// TestPolicyForReplicas: the console's policy lets the browser's node reach the other control
// replicas (control WebSocket and embedded relay at each one's origin), so it can move to one
// when its own dies; a hostile or odd URL in the list adds nothing.
func TestPolicyForReplicas(t *testing.T) {
	self := "http://127.0.0.1:8080"
	got := policyFor(nil, self, []string{"http://127.0.0.1:8081", self, "https://Control-B.example.com/base", "ftp://x.example", "http://evil.example; script-src *"})
	want := "connect-src 'self' http://127.0.0.1:8081 https://control-b.example.com ws://127.0.0.1:8081 wss://control-b.example.com;"
	if !strings.Contains(got, want) {
		t.Errorf("policy %q\nhas no %q", got, want)
	}
	if strings.Contains(got, "evil") || strings.Contains(got, "ftp") || strings.Count(got, "script-src") != 1 {
		t.Errorf("a hostile replica URL got into the policy: %q", got)
	}
}
