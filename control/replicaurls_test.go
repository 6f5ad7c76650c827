package control

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"tsconnect/controlws"
	"tsconnect/internal/eventually"
)

// TestReplicasCleanStop: two replicas on one PostgreSQL. The map of a node on B lists both
// replicas' control URLs and shows on-a (streaming from A) online, as B's node list shows
// 40 more nodes streaming from A. A stops cleanly: at once (not when A's word runs out,
// presenceTTL later) on-a is offline in that map, the 40 in B's list, and the map lists B's
// URL alone.
func TestReplicasCleanStop(t *testing.T) {
	rs, _ := newReplicas(t, 2, nil)
	a, b := rs[0], rs[1]
	if _, err := a.s.SetPolicy(context.Background(), []byte(`{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}`), "test"); err != nil {
		t.Fatal(err)
	}
	secret := a.authKey(AuthKeyOptions{User: a.user("ada@example.com").ID, Reusable: true})
	ma, na := a.mustRegister(secret, "on-a")
	ma.watch(t)
	const more = 40
	for i := range more {
		m, _ := a.mustRegister(secret, fmt.Sprintf("more-%d", i))
		m.watch(t)
	}
	onlineOnB := func() int {
		n := 0
		for _, nd := range b.nodes() {
			if nd.Online && nd.Name != "on-b" {
				n++
			}
		}
		return n
	}
	eventually.True(t, "B lists the nodes on A online", func() bool { return onlineOnB() == more+1 })
	mb, _ := b.mustRegister(secret, "on-b")
	wb := mb.watch(t)
	both := []string{a.cfg.ServerURL, b.cfg.ServerURL}
	slices.Sort(both)
	wb.waitFor(t, "on-a online in on-b's map, which lists both replicas", func(nm *controlws.NetworkMap) bool {
		p, ok := peer(nm, na.ID)
		return ok && p.Online && slices.Equal(nm.ControlURLs, both)
	})
	t0 := time.Now()
	if err := a.s.Close(); err != nil {
		t.Fatal(err)
	}
	wb.waitFor(t, "on-a offline in on-b's map once A stopped, and A's URL gone from it", func(nm *controlws.NetworkMap) bool {
		p, ok := peer(nm, na.ID)
		return ok && !p.Online && slices.Equal(nm.ControlURLs, []string{b.cfg.ServerURL})
	})
	t.Logf("on-a offline and A's URL gone in B's map %v after A began to stop", time.Since(t0).Round(time.Millisecond))
	eventually.True(t, "B lists every node of A offline", func() bool { return onlineOnB() == 0 })
	t.Logf("all %d nodes of A offline in B's node list %v after A began to stop", more+1, time.Since(t0).Round(time.Millisecond))
}
