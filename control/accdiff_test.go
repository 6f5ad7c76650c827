package control

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"tsconnect/controlws"
)

// deltaFollower is a stream of a version 3 or later client driven by hand: each step takes its messages and
// applies them to the map it holds, as a node does.
type deltaFollower struct {
	st                  *stream
	nm                  controlws.NetworkMap
	filterDeltas, rules int // messages that held them
	bytes               int // of the messages of the last step
}

// followAll opens a stream of a client of version for each node, registered as a live stream (so
// publishes mark it, and the node counts as online), then applies each first full map.
func followAll(t *testing.T, e *env, version int, ids ...int64) []*deltaFollower {
	t.Helper()
	var out []*deltaFollower
	e.s.mu.Lock()
	for _, id := range ids {
		if _, ok := e.s.streams[id]; ok {
			e.s.mu.Unlock()
			t.Fatalf("node %d already has a stream", id)
		}
		st := newStream(e.s, id, 1, nil)
		st.rulesDelta = version >= controlws.VersionRulesDelta
		st.filterDelta = version >= controlws.VersionFilterDelta
		e.s.streams[id] = map[*stream]struct{}{st: {}}
		e.s.onlineChanged(id) // online now: its cached entry is stale
		out = append(out, &deltaFollower{st: st})
	}
	e.s.mu.Unlock()
	for _, f := range out {
		if full := f.step(t); full != 1 {
			t.Fatalf("node %d: first messages held %d full maps, want 1", f.st.nodeID, full)
		}
	}
	return out
}

// step applies every pending message of f's stream and returns how many were full maps.
func (f *deltaFollower) step(t *testing.T) (full int) {
	t.Helper()
	f.bytes = 0
	for range 10 {
		body, held := f.st.take()
		if held {
			<-f.st.s.fullMaps
		}
		if body == nil {
			return full
		}
		f.bytes += len(body)
		var r controlws.MapResponse
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("node %d: message %.200s: %v", f.st.nodeID, body, err)
		}
		if r.Full != nil {
			full++
		}
		if err := f.nm.CheckDelta(&r); err != nil {
			t.Fatalf("node %d: message %.300s: %v", f.st.nodeID, body, err)
		}
		if r.FilterDelta != nil {
			f.filterDeltas++
		}
		if r.Rules != nil {
			f.rules++
		}
		f.nm.Apply(&r)
	}
	t.Fatalf("node %d: more than 10 messages for one change", f.st.nodeID)
	return full
}

// sameAsFull fails unless f's map equals the full map control would send the node now:
// the same self, peers, packet filter and SSH rules, and the users of every peer.
func (f *deltaFollower) sameAsFull(t *testing.T, step string) {
	t.Helper()
	s := f.st.s
	s.mu.RLock()
	c := s.compiledLocked()
	peers, _ := s.peerList(c, f.st.nodeID)
	body := s.fullMapJSON(c, f.st.nodeID, peers, f.st.sshFor(c, f.st.nodeID), f.st.recordFromFor(c, f.st.nodeID))
	s.mu.RUnlock()
	var r controlws.MapResponse
	if err := json.Unmarshal(body, &r); err != nil || r.Full == nil {
		t.Fatalf("%s: full map %.200s: %v", step, body, err)
	}
	want, got := *r.Full, f.nm
	byID := func(a, b controlws.Node) int { return cmp.Compare(a.ID, b.ID) }
	got.Peers = slices.Clone(got.Peers)
	slices.SortFunc(got.Peers, byID)
	slices.SortFunc(want.Peers, byID)
	enc := func(nm controlws.NetworkMap) string {
		b, _ := json.Marshal(struct {
			Self   controlws.Node
			Peers  []controlws.Node
			Filter any
			SSH    any
		}{nm.Self, nm.Peers, nm.PacketFilter, nm.SSHRules})
		return string(b)
	}
	if g, w := enc(got), enc(want); g != w {
		t.Fatalf("%s: node %d's map after deltas\n%s\nwant (its full map)\n%s", step, f.st.nodeID, g, w)
	}
	for _, p := range want.Peers {
		if _, ok := got.UserByID(p.User); p.User != 0 && !ok {
			t.Fatalf("%s: node %d's map lacks user %d of peer %d", step, f.st.nodeID, p.User, p.ID)
		}
	}
}

// TestAccDiffDeltasMatchFullMap drives version 3 streams through the two changes whose
// peers only accDiffLocked finds (a node's own filter admitting other addresses): a policy
// edit that lets a user's node reach a server, and a user leaving an identity-provider
// group that reached it. Each stream gets deltas, not full maps, and the map it builds
// from them equals its full map.
func TestAccDiffDeltasMatchFullMap(t *testing.T) {
	for _, v := range []int{controlws.VersionRulesDelta, controlws.VersionFilterDelta} {
		t.Run(fmt.Sprint("version ", v), func(t *testing.T) { testAccDiffDeltas(t, v) })
	}
}

func testAccDiffDeltas(t *testing.T, version int) {
	e := newEnv(t, nil)
	ctx := context.Background()
	policyText := func(extra string) []byte {
		return []byte(`{
		"groups": {"group:eng": ["idpgroup:engineering"` + extra + `]},
		"tagOwners": {"tag:db": ["admin@example.com"]},
		"acls": [{"action": "accept", "src": ["group:eng"], "dst": ["tag:db:5432"]},
			{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*"]}],
		"ssh": [{"action": "accept", "src": ["group:eng"], "dst": ["tag:db"], "users": ["postgres"]}],
	}`)
	}
	if _, err := e.s.SetPolicy(ctx, policyText(""), "test"); err != nil {
		t.Fatal(err)
	}
	admin := e.user("admin@example.com")
	bob := e.user("bob@example.com")
	aliceID := OIDCIdentity{Issuer: "https://idp.example", Subject: "a1", Email: "alice@example.com", Groups: []string{"engineering"}}
	alice, err := e.s.OIDCUser(ctx, aliceID, true)
	if err != nil {
		t.Fatal(err)
	}
	_, db := e.mustRegister(e.authKey(AuthKeyOptions{User: admin.ID, Tags: []string{"tag:db"}}), "db")
	keyA := e.authKey(AuthKeyOptions{User: alice.ID, Reusable: true})
	_, a1 := e.mustRegister(keyA, "a1")
	_, a2 := e.mustRegister(keyA, "a2")
	_, b1 := e.mustRegister(e.authKey(AuthKeyOptions{User: bob.ID}), "b1")
	fs := followAll(t, e, version, db.ID, a1.ID, a2.ID, b1.ID)
	fdb := fs[0]
	peerIDs := func(f *deltaFollower) []int64 {
		var ids []int64
		for _, p := range f.nm.Peers {
			ids = append(ids, p.ID)
		}
		slices.Sort(ids)
		return ids
	}
	if got := peerIDs(fdb); !slices.Equal(got, []int64{a1.ID, a2.ID}) {
		t.Fatalf("db first sees %v, want alice's nodes %v", got, []int64{a1.ID, a2.ID})
	}
	// db's filter changes at each step; a version 4 client gets the first as a source delta
	// (bob's addresses), the second whole (removing four sources of six costs more than
	// sending the two left), the third whole (the rule goes).
	steps := []struct {
		name    string
		change  func()
		dbPeers []int64
		delta   bool // db gets a filter delta from version 4 on
	}{
		{"policy edit: bob joins group:eng", func() {
			if _, err := e.s.SetPolicy(ctx, policyText(`, "bob@example.com"`), "test"); err != nil {
				t.Fatal(err)
			}
		}, []int64{a1.ID, a2.ID, b1.ID}, true},
		{"alice leaves engineering", func() {
			aliceID.Groups = nil
			if _, err := e.s.OIDCUser(ctx, aliceID, true); err != nil {
				t.Fatal(err)
			}
		}, []int64{b1.ID}, false},
		{"policy edit: bob leaves group:eng", func() {
			if _, err := e.s.SetPolicy(ctx, policyText(""), "test"); err != nil {
				t.Fatal(err)
			}
		}, nil, false},
	}
	for _, step := range steps {
		deltas, whole := fdb.filterDeltas, fdb.rules
		step.change()
		for _, f := range fs {
			if full := f.step(t); full != 0 {
				t.Fatalf("%s: node %d got %d full maps, want deltas", step.name, f.st.nodeID, full)
			}
			f.sameAsFull(t, step.name)
		}
		if got := peerIDs(fdb); !slices.Equal(got, step.dbPeers) {
			t.Fatalf("%s: db sees %v, want %v", step.name, got, step.dbPeers)
		}
		wantDelta := step.delta && version >= controlws.VersionFilterDelta
		if d, w := fdb.filterDeltas-deltas, fdb.rules-whole; wantDelta && (d != 1 || w != 0) || !wantDelta && (d != 0 || w != 1) {
			t.Fatalf("%s: version %d: db got %d filter deltas and %d whole rules, want a %s", step.name, version, d, w,
				map[bool]string{true: "filter delta", false: "whole rules"}[wantDelta])
		}
	}
}
