package control

import (
	"context"
	"fmt"
	"testing"

	"tsconnect/controlws"
)

// TestFilterDeltaOnJoin: in a network where servers let in every member, a member's join
// and deletion change each server's filter by that member's two addresses: a version 4
// server gets just those as a filter delta (a version 3 one its whole rules), and the
// filter it applies equals its full map's.
func TestFilterDeltaOnJoin(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	admin := e.user("ada@example.com")
	if _, err := e.s.SetPolicy(ctx, []byte(sparsePolicy), "test"); err != nil {
		t.Fatal(err)
	}
	member := e.authKey(AuthKeyOptions{User: admin.ID, Reusable: true})
	server := e.authKey(AuthKeyOptions{User: admin.ID, Reusable: true, Tags: []string{"tag:server"}})
	var servers []int64
	for i := range 2 {
		_, n := e.mustRegister(server, fmt.Sprint("server", i))
		servers = append(servers, n.ID)
	}
	for i := range 40 {
		e.mustRegister(member, fmt.Sprint("member", i))
	}
	v3 := followAll(t, e, controlws.VersionRulesDelta, servers[0])[0]
	v4 := followAll(t, e, controlws.VersionFilterDelta, servers[1])[0]
	_, joined := e.mustRegister(member, "joined")
	for _, step := range []struct {
		name   string
		change func()
	}{
		{"a member joins", func() {}},
		{"the member is deleted", func() {
			if err := e.s.DeleteNode(ctx, joined.ID); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		step.change()
		for _, f := range []*deltaFollower{v3, v4} {
			deltas, whole := f.filterDeltas, f.rules
			if full := f.step(t); full != 0 {
				t.Fatalf("%s: server %d got a full map", step.name, f.st.nodeID)
			}
			f.sameAsFull(t, step.name)
			if f == v4 && (f.filterDeltas-deltas != 1 || f.rules != whole) || f == v3 && (f.rules-whole != 1 || f.filterDeltas != deltas) {
				t.Fatalf("%s: the version %d server got %d filter deltas and %d whole rules", step.name,
					map[bool]int{true: 4, false: 3}[f == v4], f.filterDeltas-deltas, f.rules-whole)
			}
		}
		// The whole filter lists 41 members' two addresses; the delta one member's and its entry.
		if v4.bytes*3 > v3.bytes {
			t.Fatalf("%s: the version 4 server got %d bytes, the version 3 one %d: want a delta of a third or less", step.name, v4.bytes, v3.bytes)
		}
		t.Logf("%s: version 3 server got %d bytes, version 4 server %d", step.name, v3.bytes, v4.bytes)
	}
}
