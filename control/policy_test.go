package control

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"tsconnect/controlws"
	"tsconnect/policy"
	"tsconnect/policy/rules"
)

const testPolicyV1 = `{
	"tagOwners": {"tag:server": ["alice@example.com"]},
	"acls": [
		{"action": "accept", "src": ["autogroup:member"], "dst": ["tag:server:22"]},
	],
	"ssh": [
		{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:server"], "users": ["root"]},
	],
}`

func TestPolicyVersionsAndRefusal(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	pv, err := e.s.Policy(ctx)
	if err != nil || pv.Version != 0 || pv.Text != policy.DefaultText {
		t.Fatalf("before any write: version %d, err %v; want the default policy", pv.Version, err)
	}
	v1, err := e.s.SetPolicy(ctx, []byte(testPolicyV1), "alice")
	if err != nil || v1.Version != 1 {
		t.Fatalf("first write: %+v, %v", v1, err)
	}
	// A refused write names the problem with its place and leaves version 1 in force.
	bad := `{"ssh": [{"action": "allow", "src": ["alice@example.com"], "dst": ["tag:server"], "users": ["root"]}]}`
	_, err = e.s.SetPolicy(ctx, []byte(bad), "mallory")
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "policy.hujson:1:") || !strings.Contains(err.Error(), "ssh[0].action") {
		t.Fatalf("bad write: %v; want ErrInvalid naming ssh[0].action at line 1", err)
	}
	failing := strings.Replace(testPolicyV1, `"ssh": [`, `"sshTests": [{"src": "alice@example.com", "dst": ["tag:server"], "deny": ["root"]}], "ssh": [`, 1)
	if _, err = e.s.SetPolicy(ctx, []byte(failing), "mallory"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "sshTests[0]") {
		t.Fatalf("write with a failing sshTest: %v; want it refused naming sshTests[0]", err)
	}
	if pv, _ := e.s.Policy(ctx); pv.Version != 1 || pv.Text != testPolicyV1 {
		t.Fatalf("after refused writes, version %d in force; want 1", pv.Version)
	}
	v2, err := e.s.SetPolicy(ctx, []byte(policy.DefaultText), "bob")
	if err != nil || v2.Version != 2 {
		t.Fatalf("second write: %+v %v", v2, err)
	}
	// Versions survive a restart, with who and when; a restore is a new version.
	e.restart()
	hist, err := e.s.PolicyHistory(ctx)
	if err != nil || len(hist) != 2 || hist[0].Author != "alice" || hist[1].Author != "bob" || hist[0].Created.IsZero() {
		t.Fatalf("history: %+v, %v", hist, err)
	}
	if pv, _ := e.s.Policy(ctx); pv.Version != 2 {
		t.Fatalf("after restart, version %d in force; want 2", pv.Version)
	}
	v3, err := e.s.RestorePolicy(ctx, 1, "carol")
	if err != nil || v3.Version != 3 || v3.Note != "restore of version 1" {
		t.Fatalf("restore: %+v, %v", v3, err)
	}
	if pv, _ := e.s.Policy(ctx); pv.Text != testPolicyV1 || pv.Author != "carol" {
		t.Fatalf("after restore: %+v", pv)
	}
	if _, err := e.s.RestorePolicy(ctx, 9, "carol"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("restore of a missing version: %v; want ErrNotFound", err)
	}
}

func TestPolicyTagOwners(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	alice, bob := e.user("alice@example.com"), e.user("bob@example.com")
	if _, err := e.s.SetPolicy(ctx, []byte(testPolicyV1), "test"); err != nil {
		t.Fatal(err)
	}
	_, _, err := e.s.CreateAuthKey(ctx, AuthKeyOptions{Tags: []string{"tag:server"}, CreatedBy: bob.ID})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "tag:server") {
		t.Fatalf("bob applies tag:server he does not own: %v; want refused", err)
	}
	if _, _, err := e.s.CreateAuthKey(ctx, AuthKeyOptions{Tags: []string{"tag:server"}, CreatedBy: alice.ID}); err != nil {
		t.Fatalf("alice, an owner of tag:server: %v", err)
	}
	if _, _, err := e.s.CreateAuthKey(ctx, AuthKeyOptions{Tags: []string{"tag:server"}}); err != nil {
		t.Fatalf("an admin (the admin API): %v", err)
	}
	// A tagged node belongs to no user, even when its key was made by one.
	key, _, _ := e.s.CreateAuthKey(ctx, AuthKeyOptions{User: alice.ID, Tags: []string{"tag:server"}, CreatedBy: alice.ID})
	_, n := e.mustRegister(key, "server")
	if n.User != 0 || len(n.Tags) != 1 {
		t.Fatalf("tagged node: user %d tags %v; want user 0", n.User, n.Tags)
	}
}

// TestPolicyCompiledPerNode checks what maps carry: each node its own rules, only the peers
// it may talk to, and new rules on a policy write.
func TestPolicyCompiledPerNode(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	alice, bob := e.user("alice@example.com"), e.user("bob@example.com")
	serverM, server := e.mustRegister(e.authKey(AuthKeyOptions{Tags: []string{"tag:server"}}), "server")
	aliceM, aliceN := e.mustRegister(e.authKey(AuthKeyOptions{User: alice.ID}), "alice-laptop")
	bobM, bobN := e.mustRegister(e.authKey(AuthKeyOptions{User: bob.ID}), "bob-laptop")
	ws, wa, wb := serverM.watch(t), aliceM.watch(t), bobM.watch(t)

	// The default policy: all traffic, every node sees every other; SSH only to own devices.
	nm := ws.waitFor(t, "server sees both laptops", func(nm *controlws.NetworkMap) bool {
		return hasPeer(nm, aliceN.ID) && hasPeer(nm, bobN.ID)
	})
	if nm.PacketFilter == nil || len(nm.SSHRules) != 0 {
		t.Fatalf("server under the default policy: filter %v, ssh rules %+v; want a filter and no SSH rules (tagged)", nm.PacketFilter, nm.SSHRules)
	}

	if _, err := e.s.SetPolicy(ctx, []byte(testPolicyV1), "test"); err != nil {
		t.Fatal(err)
	}
	nm = ws.waitFor(t, "server gets alice's SSH rule", func(nm *controlws.NetworkMap) bool { return len(nm.SSHRules) == 1 })
	r := nm.SSHRules[0]
	if r.Action != rules.Accept || r.Users["root"] != "root" || len(r.Principals) != 2 {
		t.Fatalf("server's rule: %+v; want accept root from alice-laptop's two addresses", r)
	}
	for _, p := range r.Principals {
		if !prefixesHave(aliceN.Addresses, p) {
			t.Fatalf("principal %v is not alice-laptop's", p)
		}
	}
	if !nm.PacketFilter.Allows(bobN.Addresses[0].Addr(), netip.AddrPortFrom(server.Addresses[0].Addr(), 22), rules.ProtoTCP) ||
		nm.PacketFilter.Allows(bobN.Addresses[0].Addr(), netip.AddrPortFrom(server.Addresses[0].Addr(), 80), rules.ProtoTCP) {
		t.Fatalf("server's filter %+v: want members on port 22 only", *nm.PacketFilter)
	}
	// The laptops may not talk to each other in either direction: they stop seeing each other.
	wa.waitFor(t, "alice-laptop loses bob-laptop", func(nm *controlws.NetworkMap) bool {
		return !hasPeer(nm, bobN.ID) && hasPeer(nm, server.ID) && nm.PacketFilter != nil && len(*nm.PacketFilter) == 0
	})
	wb.waitFor(t, "bob-laptop loses alice-laptop", func(nm *controlws.NetworkMap) bool {
		return !hasPeer(nm, aliceN.ID) && hasPeer(nm, server.ID) && len(nm.SSHRules) == 0
	})
}

func prefixesHave(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Addr() == a {
			return true
		}
	}
	return false
}
