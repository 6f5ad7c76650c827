package control

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"tsconnect/policy"
)

// TestIncrementalCompileMatchesWhole: after joins, retags, logouts and deletions under a
// policy with groups, tags, autogroup:self and SSH rules, the rules control compiled only
// for the nodes each change concerned equal a whole compilation of the same network.
func TestIncrementalCompileMatchesWhole(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	ada, bob := e.user("ada@example.com"), e.user("bob@example.com")
	if _, err := e.s.SetPolicy(ctx, []byte(`{
		"groups": {"group:ops": ["ada@example.com"]},
		"tagOwners": {"tag:db": ["ada@example.com"], "tag:web": ["ada@example.com"]},
		"acls": [
			{"action": "accept", "src": ["group:ops"], "dst": ["tag:db:5432"]},
			{"action": "accept", "src": ["tag:web"], "dst": ["tag:db:5432"]},
			{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*"]},
			{"action": "accept", "src": ["*"], "dst": ["tag:web:443"]},
		],
		"ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["root"]},
			{"action": "accept", "src": ["group:ops"], "dst": ["tag:db"], "users": ["postgres"]}],
	}`), "test"); err != nil {
		t.Fatal(err)
	}
	check := func(step string) {
		t.Helper()
		e.s.mu.RLock()
		defer e.s.mu.RUnlock()
		got := e.s.compiledLocked()
		nw := &policy.Network{}
		for id, ln := range e.s.nodes {
			if !ln.loggedOut {
				nw.Nodes = append(nw.Nodes, e.s.policyNodeLocked(id, ln))
			}
		}
		slices.SortFunc(nw.Nodes, func(a, b policy.Node) int { return cmp.Compare(a.ID, b.ID) }) // as control orders them
		comp := e.s.policy.NewCompiler(nw)
		if got.nodes.n != len(nw.Nodes) {
			t.Fatalf("%s: rules for %d nodes, want %d", step, got.nodes.n, len(nw.Nodes))
		}
		for _, d := range nw.Nodes {
			want, _ := json.Marshal(comp.Compile(d))
			have, _ := json.Marshal(got.rulesOf(d.ID))
			if string(want) != string(have) {
				t.Fatalf("%s: node %d (%s) has rules\n%s\nwant\n%s", step, d.ID, d.Name, have, want)
			}
		}
	}
	keyA := e.authKey(AuthKeyOptions{User: ada.ID, Reusable: true})
	keyB := e.authKey(AuthKeyOptions{User: bob.ID, Reusable: true})
	keyDB := e.authKey(AuthKeyOptions{User: ada.ID, Reusable: true, Tags: []string{"tag:db"}})
	var ids []int64
	for i, k := range []string{keyA, keyB, keyDB, keyA, keyB, keyDB} {
		_, n := e.mustRegister(k, fmt.Sprint("n", i))
		ids = append(ids, n.ID)
		check(fmt.Sprint("join ", i))
	}
	if _, err := e.s.SetNodeTags(ctx, ids[0], []string{"tag:web"}, TagNodeOptions{}); err != nil {
		t.Fatal(err)
	}
	check("ada's node tagged web")
	if _, err := e.s.SetNodeTags(ctx, ids[5], nil, TagNodeOptions{User: ada.ID}); err != nil {
		t.Fatal(err)
	}
	check("a db node untagged, ada's")
	if err := e.s.DeleteNode(ctx, ids[2]); err != nil {
		t.Fatal(err)
	}
	check("a db node deleted")
	if _, err := e.s.ExpireNode(ctx, ids[3]); err != nil {
		t.Fatal(err)
	}
	check("ada's other node expired")
	e.mustRegister(keyA, "late")
	check("a late join")
}
