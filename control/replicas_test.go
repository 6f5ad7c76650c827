package control

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"tsconnect/control/store"

	"tsconnect/control/store/pgstore"
	"tsconnect/controlws"
	"tsconnect/internal/testpg"
)

// newReplicas starts n servers (each with its own state directory and HTTP server) on one
// fresh database of a real PostgreSQL server.
func newReplicas(t *testing.T, n int) ([]*env, string) {
	t.Helper()
	url := testpg.Start(t).NewDatabase(t)
	var out []*env
	for range n {
		out = append(out, newEnv(t, func(c *Config) {
			st, err := pgstore.Open(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			c.Store = st
		}))
	}
	return out, url
}

// TestReplicasShareChanges: on two replicas of one PostgreSQL database, what is done through
// either reaches the map streams the other holds: a user and a node registered through A
// appear in the map of a node streaming from B; a policy change through B removes a peer
// from the map of a node on A; tags set through A show on B; a node deleted through B
// has its stream on A ended and leaves B's maps; a key expired through A ends its stream
// on B.
func TestReplicasShareChanges(t *testing.T) {
	rs, _ := newReplicas(t, 2)
	a, b := rs[0], rs[1]
	ctx := context.Background()
	const tagOwners = `"tagOwners": {"tag:web": ["ada@example.com"]}`
	if _, err := b.s.SetPolicy(ctx, []byte(`{`+tagOwners+`, "acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}`), "test"); err != nil {
		t.Fatal(err)
	}
	u := a.user("ada@example.com")
	// The key is made through A, used through B: B knows the user A created.
	secret := a.authKey(AuthKeyOptions{User: u.ID, Reusable: true})
	mb, nb := b.mustRegister(secret, "on-b")
	wb := mb.watch(t)
	wb.waitFor(t, "b's first map", func(*controlws.NetworkMap) bool { return true })

	ma, na := a.mustRegister(secret, "on-a")
	wa := ma.watch(t)
	wb.waitFor(t, "on-a, registered through A, in on-b's map on B", func(nm *controlws.NetworkMap) bool {
		p, ok := peer(nm, na.ID)
		return ok && p.Hostname == "on-a" && slices.ContainsFunc(nm.Users, func(up controlws.UserProfile) bool { return up.LoginName == "ada@example.com" })
	})
	wa.waitFor(t, "on-b in on-a's map", func(nm *controlws.NetworkMap) bool { return hasPeer(nm, nb.ID) })

	// Only tag:web may be reached: on-a (on A) no longer sees on-b, an untagged node.
	if _, err := b.s.SetPolicy(ctx, []byte(`{`+tagOwners+`, "acls": [{"action": "accept", "src": ["*"], "dst": ["tag:web:*"]}]}`), "test"); err != nil {
		t.Fatal(err)
	}
	wa.waitFor(t, "on-b out of on-a's map after a policy change through B", func(nm *controlws.NetworkMap) bool { return !hasPeer(nm, nb.ID) })
	if pv, err := a.s.Policy(ctx); err != nil || pv.Text != `{`+tagOwners+`, "acls": [{"action": "accept", "src": ["*"], "dst": ["tag:web:*"]}]}` {
		t.Fatalf("policy through A: %+v, %v; want the one set through B", pv, err)
	}

	// Tagging on-b through A makes it reachable again: on-a sees it, on B's stream too.
	if _, err := a.s.SetNodeTags(ctx, nb.ID, []string{"tag:web"}, TagNodeOptions{}); err != nil {
		t.Fatal(err)
	}
	wa.waitFor(t, "tagged on-b back in on-a's map", func(nm *controlws.NetworkMap) bool {
		p, ok := peer(nm, nb.ID)
		return ok && slices.Equal(p.Tags, []string{"tag:web"})
	})
	wb.waitFor(t, "on-b's own entry tagged, on B", func(nm *controlws.NetworkMap) bool {
		return slices.Equal(nm.Self.Tags, []string{"tag:web"})
	})

	// A third node, held by B, watches on-a go.
	mc, _ := b.mustRegister(secret, "on-b-2")
	wc := mc.watch(t)
	if _, err := a.s.SetPolicy(ctx, []byte(`{`+tagOwners+`, "acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}`), "test"); err != nil {
		t.Fatal(err)
	}
	wc.waitFor(t, "on-a in on-b-2's map", func(nm *controlws.NetworkMap) bool { return hasPeer(nm, na.ID) })
	if err := b.s.DeleteNode(ctx, na.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, wa.ended(t), controlws.CodeNodeDeleted)
	wc.waitFor(t, "on-a out of on-b-2's map after its deletion through B", func(nm *controlws.NetworkMap) bool { return !hasPeer(nm, na.ID) })
	if ns := a.nodes(); slices.ContainsFunc(ns, func(n controlws.Node) bool { return n.ID == na.ID }) {
		t.Fatalf("A still lists the deleted node: %+v", ns)
	}

	// Expiring on-b's key through A ends its stream on B and takes it out of on-b-2's map.
	if _, err := a.s.ExpireNode(ctx, nb.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, wb.ended(t), controlws.CodeNotRegistered)
	wc.waitFor(t, "expired on-b out of on-b-2's map", func(nm *controlws.NetworkMap) bool { return !hasPeer(nm, nb.ID) })
}

// TestReplicasResyncAfterLostListener: a change whose announcement a replica missed (made
// here straight in the database, announcing nothing) reaches it when its listening
// connection is cut: it reconnects and reloads everything.
func TestReplicasResyncAfterLostListener(t *testing.T) {
	rs, url := newReplicas(t, 2)
	a, b := rs[0], rs[1]
	ctx := context.Background()
	if _, err := a.s.SetPolicy(ctx, []byte(`{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}`), "test"); err != nil {
		t.Fatal(err)
	}
	secret := a.authKey(AuthKeyOptions{User: a.user("ada@example.com").ID, Reusable: true})
	mb, _ := b.mustRegister(secret, "on-b")
	wb := mb.watch(t)
	ma, na := a.mustRegister(secret, "on-a")
	wa := ma.watch(t)
	wb.waitFor(t, "on-a in on-b's map", func(nm *controlws.NetworkMap) bool { return hasPeer(nm, na.ID) })

	raw, err := pgstore.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	err = raw.Update(ctx, func(tx store.Tx) error {
		n, err := tx.NodeByID(na.ID)
		if err != nil {
			return err
		}
		n.Deleted = time.Now().UTC()
		return tx.UpdateNode(&n)
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := raw.DB().Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, pgstore.ListenerName)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 2 {
		t.Fatalf("cut %d listening connections; want 2 (one a replica)", n)
	}
	wb.waitFor(t, "on-a out of on-b's map after B resynced", func(nm *controlws.NetworkMap) bool { return !hasPeer(nm, na.ID) })
	wantCode(t, wa.ended(t), controlws.CodeNodeDeleted)
}

// TestReplicasRaceSingleUseKey: machines racing to register with one single-use key,
// half through each replica, give exactly one node, which both replicas list; the others
// are told the key is used.
func TestReplicasRaceSingleUseKey(t *testing.T) {
	rs, _ := newReplicas(t, 2)
	secret := rs[0].authKey(AuthKeyOptions{User: rs[0].user("ada@example.com").ID})
	const racers = 8
	ms := make([]*machine, racers)
	for i := range ms {
		ms[i] = rs[i%2].newMachine()
	}
	errs := make(chan error, racers)
	start := make(chan struct{})
	for i, m := range ms {
		go func() {
			<-start
			_, err := m.register(secret, "racer-"+strconv.Itoa(i))
			errs <- err
		}()
	}
	close(start)
	ok := 0
	for range racers {
		err := <-errs
		if err == nil {
			ok++
			continue
		}
		var ce *controlws.Error
		if !errors.As(err, &ce) || ce.Code != controlws.CodeUsedKey {
			t.Errorf("a losing registration: %v; want code %s", err, controlws.CodeUsedKey)
		}
	}
	if ok != 1 {
		t.Fatalf("%d registrations with one single-use key succeeded; want 1", ok)
	}
	for i, e := range rs {
		if ns := e.nodes(); len(ns) != 1 {
			t.Fatalf("replica %d lists %d nodes; want 1", i, len(ns))
		}
	}
}
