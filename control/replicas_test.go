package control

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"tsconnect/internal/eventually"

	"tsconnect/control/store"

	"tsconnect/control/store/pgstore"
	"tsconnect/controlws"
	"tsconnect/internal/testpg"
)

// newReplicas starts n servers (each with its own state directory and HTTP server) on one
// fresh database of a real PostgreSQL server; mod, if set, edits replica i's Config.
func newReplicas(t *testing.T, n int, mod func(i int, c *Config)) ([]*env, string) {
	t.Helper()
	url := testpg.Start(t).NewDatabase(t)
	var out []*env
	for i := range n {
		out = append(out, newEnv(t, func(c *Config) {
			st, err := pgstore.Open(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			c.Store = st
			if mod != nil {
				mod(i, c)
			}
		}))
	}
	// Every replica closes before any checks for leaks: each meshes with the others.
	t.Cleanup(func() {
		for _, e := range out {
			e.s.Close()
		}
	})
	return out, url
}

// TestReplicasShareChanges: on two replicas of one PostgreSQL database, what is done through
// either reaches the map streams the other holds: a user and a node registered through A
// appear in the map of a node streaming from B; a policy change through B removes a peer
// from the map of a node on A; tags set through A show on B; a node deleted through B
// has its stream on A ended and leaves B's maps; a key expired through A ends its stream
// on B.
func TestReplicasShareChanges(t *testing.T) {
	rs, _ := newReplicas(t, 2, nil)
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
	rs, url := newReplicas(t, 2, nil)
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
	rs, _ := newReplicas(t, 2, nil)
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

// TestReplicasSweepOnce: of two replicas, only the holder of the sweep's lease deletes
// stale ephemeral nodes; an ephemeral node online on either replica is not deleted; when
// the holder stops, the other takes over within the lease time and deletes the nodes gone
// stale since (the stopped replica's online node among them), not its own online node.
func TestReplicasSweepOnce(t *testing.T) {
	// The holder renews its lease every half grace: 1.5 s of slack, ample even under -race.
	const grace = 3 * time.Second
	var mu sync.Mutex
	swept := map[int]int{} // replica → nodes it deleted as stale
	rs, url := newReplicas(t, 2, func(i int, c *Config) {
		c.EphemeralGrace = grace
		c.Logf = func(f string, args ...any) {
			if strings.HasPrefix(f, "control: deleted ephemeral node") {
				mu.Lock()
				swept[i]++
				mu.Unlock()
			}
			t.Logf(f, args...)
		}
	})
	secret := rs[0].authKey(AuthKeyOptions{User: rs[0].user("ada@example.com").ID, Reusable: true, Ephemeral: true})
	// Online on each replica, for the whole test.
	var online []int64
	for i, e := range rs {
		m, n := e.mustRegister(secret, "online-"+strconv.Itoa(i))
		m.watch(t).waitFor(t, "a map", func(*controlws.NetworkMap) bool { return true })
		online = append(online, n.ID)
	}
	// goneStale registers a node through replica e, streams, and disconnects it; it
	// returns the node's ID.
	goneStale := func(e *env, name string) int64 {
		m, n := e.mustRegister(secret, name)
		m.watch(t).waitFor(t, "a map", func(*controlws.NetworkMap) bool { return true })
		m.c.Close()
		return n.ID
	}
	waitGone := func(what string, id int64, on *env) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for slices.ContainsFunc(on.nodes(), func(n controlws.Node) bool { return n.ID == id }) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: node %d never deleted", what, id)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	stale := []int64{goneStale(rs[0], "stale-0"), goneStale(rs[1], "stale-1")}
	for _, id := range stale {
		waitGone("stale", id, rs[0])
	}
	var holder string
	pg, err := pgstore.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if err := pg.DB().QueryRow(`SELECT holder FROM leases WHERE name = $1`, leaseEphemeral).Scan(&holder); err != nil {
		t.Fatal(err)
	}
	h := slices.IndexFunc(rs, func(e *env) bool { return e.s.origin == holder })
	if h < 0 {
		t.Fatalf("lease holder %q is neither replica", holder)
	}
	mu.Lock()
	if swept[h] != 2 || swept[1-h] != 0 {
		t.Fatalf("replicas deleted %v stale nodes; want 2 by the holder (%d) alone", swept, h)
	}
	mu.Unlock()

	// The holder dies: it stops, and the lease it gave up on the way is taken back in its
	// name (unless the other replica took it first), as a holder killed mid-lease leaves it.
	// The other replica takes over once the lease runs out.
	other := rs[1-h]
	if err := rs[h].s.Close(); err != nil {
		t.Fatal(err)
	}
	var leases int
	// (The other replica may have taken the lease already: count the stopped one's only.)
	if err := pg.DB().QueryRow(`SELECT count(*) FROM leases WHERE name = $1 AND holder = $2`, leaseEphemeral, holder).Scan(&leases); err != nil || leases != 0 {
		t.Fatalf("%d sweep leases of the holder after its clean stop (%v); want it given up", leases, err)
	}
	err = pg.Update(context.Background(), func(tx store.Tx) error {
		if _, err := tx.TryLease(leaseEphemeral, holder, time.Now(), grace); err != nil {
			return err
		}
		// It also gave its relay's entry up: the relays' list is the other's alone.
		v, err := tx.Setting(settingRelayMesh)
		if err != nil || strings.Contains(v, rs[h].cfg.ServerURL) || !strings.Contains(v, other.cfg.ServerURL) {
			return fmt.Errorf("relays' list after a clean stop: %q, %v; want the other replica's relay alone", v, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	id := goneStale(other, "stale-after")
	waitGone("after the holder stopped", id, other)
	t.Logf("the other replica deleted a node gone stale after the holder stopped in %v (grace and lease %v)", time.Since(t0).Round(time.Millisecond), grace)
	// So is the node that was online on the stopped replica: its connection ended with it.
	waitGone("online on the stopped replica", online[h], other)
	mu.Lock()
	if swept[1-h] != 2 {
		t.Fatalf("the surviving replica deleted %d nodes; want 2", swept[1-h])
	}
	mu.Unlock()
	if ns := other.nodes(); len(ns) != 1 || ns[0].ID != online[1-h] {
		t.Fatalf("nodes left: %+v; want the one online on the surviving replica", ns)
	}
}

// TestReplicasCheckAndLogin: a check raised by an agent connected to replica A, completed
// through replica B (as B's /check/ID page does), lets the held login in at once; declined
// through B, the next is refused. An interactive login waiting on A, completed through B,
// answers the node's register on A, whose map then follows.
func TestReplicasCheckAndLogin(t *testing.T) {
	rs, _ := newReplicas(t, 2, nil)
	a, b := rs[0], rs[1]
	ctx := context.Background()
	alice, bob := a.user("alice@example.com"), a.user("bob@example.com")
	pv, err := b.s.SetPolicy(ctx, []byte(checkPolicy), "test")
	if err != nil {
		t.Fatal(err)
	}
	eventually.True(t, "A has the policy set through B", func() bool {
		a.s.mu.RLock()
		defer a.s.mu.RUnlock()
		return a.s.policyVer.Version == pv.Version
	})
	server, _ := a.mustRegister(a.authKey(AuthKeyOptions{User: alice.ID, Tags: []string{"tag:server"}, CreatedBy: alice.ID}), "server")
	_, bobs := b.mustRegister(b.authKey(AuthKeyOptions{User: bob.ID}), "bobs")
	server.watch(t).waitFor(t, "bobs (registered through B) in the server's map on A", func(nm *controlws.NetworkMap) bool { return hasPeer(nm, bobs.ID) })

	c := askFrom(server, bobs, "root")
	id, ok := strings.CutPrefix(c.waitPending(t).URL, a.cfg.ServerURL+"/check/")
	if !ok {
		t.Fatal("no check URL")
	}
	if info, err := b.s.PendingCheck(ctx, id); err != nil || info.User.ID != bob.ID {
		t.Fatalf("B's view of the check: %+v, %v", info, err)
	}
	if err := b.s.CompleteCheck(ctx, id, bob.ID, AuthPassword); err != nil {
		t.Fatal(err)
	}
	if v := c.final(t); v.Verdict != controlws.CheckAccept {
		t.Fatalf("held login after completion through B: %+v; want accept", v)
	}
	c = askFrom(server, bobs, "daemon") // checked on every login
	id, _ = strings.CutPrefix(c.waitPending(t).URL, a.cfg.ServerURL+"/check/")
	if err := b.s.DeclineCheck(ctx, id); err != nil {
		t.Fatal(err)
	}
	if v := c.final(t); v.Verdict != controlws.CheckReject || !strings.Contains(v.Message, "declined") {
		t.Fatalf("held login after a decline through B: %+v; want reject, declined", v)
	}

	m := a.newMachine()
	l := startLogin(m, "bobs-laptop", false)
	lid := l.url(t, a)
	if err := b.s.CompleteLogin(ctx, lid, bob.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.done:
	case <-time.After(20 * time.Second):
		t.Fatal("the register waiting on A was not answered after the login through B")
	}
	if l.err != nil || l.r.Node.User != bob.ID {
		t.Fatalf("register after the login through B: %+v, %v; want bob's node", l.r, l.err)
	}
	m.watch(t).waitFor(t, "the new node's map from A", func(nm *controlws.NetworkMap) bool {
		return nm.Self.ID == l.r.Node.ID && hasPeer(nm, bobs.ID)
	})
}

// TestReplicasShareOnline: a node streaming from replica B is online in the map of a node
// on replica A and in A's node list, and offline there once it disconnects; a node last
// heard of as online on a replica that then fell silent is offline after presenceTTL.
func TestReplicasShareOnline(t *testing.T) {
	rs, _ := newReplicas(t, 2, nil)
	a, b := rs[0], rs[1]
	ctx := context.Background()
	if _, err := a.s.SetPolicy(ctx, []byte(`{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}`), "test"); err != nil {
		t.Fatal(err)
	}
	secret := a.authKey(AuthKeyOptions{User: a.user("ada@example.com").ID, Reusable: true})
	ma, _ := a.mustRegister(secret, "on-a")
	wa := ma.watch(t)
	mb, nb := b.mustRegister(secret, "on-b")
	wa.waitFor(t, "on-b in on-a's map, offline", func(nm *controlws.NetworkMap) bool {
		p, ok := peer(nm, nb.ID)
		return ok && !p.Online
	})
	mb.watch(t)
	wa.waitFor(t, "on-b online in on-a's map (it streams from B)", func(nm *controlws.NetworkMap) bool {
		p, ok := peer(nm, nb.ID)
		return ok && p.Online
	})
	if i := slices.IndexFunc(a.nodes(), func(n controlws.Node) bool { return n.ID == nb.ID }); i < 0 || !a.nodes()[i].Online {
		t.Fatalf("A's node list: on-b not online")
	}
	mb.c.Close()
	wa.waitFor(t, "on-b offline in on-a's map after it left B", func(nm *controlws.NetworkMap) bool {
		p, ok := peer(nm, nb.ID)
		return ok && !p.Online
	})

	// A replica that fell silent: heard of once, never again.
	a.s.applyPresence(map[presenceKey]bool{{origin: "silent", id: nb.ID}: true})
	wa.waitFor(t, "on-b online as the silent replica said", func(nm *controlws.NetworkMap) bool {
		p, ok := peer(nm, nb.ID)
		return ok && p.Online
	})
	a.clock.Advance(presenceTTL + time.Second)
	a.s.expirePresence()
	wa.waitFor(t, "on-b offline once the silent replica's word ran out", func(nm *controlws.NetworkMap) bool {
		p, ok := peer(nm, nb.ID)
		return ok && !p.Online
	})
}

// TestReplicasRegisterTakenMeanwhile: replicas hand out addresses from blocks of their own;
// a name or address another replica took that this one's cache has not heard of yet is
// refused by the store's unique index, and the registration takes the next: no two live
// nodes share a name or an address.
func TestReplicasRegisterTakenMeanwhile(t *testing.T) {
	rs, _ := newReplicas(t, 2, nil)
	a, b := rs[0], rs[1]
	secret := a.authKey(AuthKeyOptions{User: a.user("ada@example.com").ID, Reusable: true})
	_, web := a.mustRegister(secret, "web")
	if web.Addresses[0].Addr() != ipv4At(1) {
		t.Fatalf("the first node got %v; want %v", web.Addresses[0], ipv4At(1))
	}
	// B's cache has not heard of web yet, and its block starts where A's did.
	eventually.True(t, "B hears of web", func() bool {
		b.s.mu.RLock()
		defer b.s.mu.RUnlock()
		_, ok := b.s.addrs[web.Addresses[0].Addr()]
		return ok
	})
	forget := func(name bool) {
		b.s.writeMu.Lock()
		b.s.addrs4 = addrBlock{next: 1, end: addrBlockSize}
		b.s.writeMu.Unlock()
		b.s.mu.Lock()
		delete(b.s.addrs, web.Addresses[0].Addr())
		if name {
			delete(b.s.names, "web")
		}
		b.s.mu.Unlock()
	}
	forget(true)
	_, web1 := b.mustRegister(secret, "web")
	if web1.Name != "web-1" || web1.Addresses[0].Addr() != ipv4At(2) {
		t.Fatalf("a second web through B: %s %v; want web-1 at %v (web and its address are taken)", web1.Name, web1.Addresses[0], ipv4At(2))
	}
	forget(false)
	_, db := b.mustRegister(secret, "db")
	if db.Name != "db" || db.Addresses[0].Addr() != ipv4At(3) {
		t.Fatalf("db through B: %s %v; want db at %v (web and web-1 hold the two before)", db.Name, db.Addresses[0], ipv4At(3))
	}
	seen := map[string]bool{}
	for _, n := range a.nodes() {
		for _, k := range []string{n.Name, n.Addresses[0].String(), n.Addresses[1].String()} {
			if seen[k] {
				t.Fatalf("two live nodes share %s", k)
			}
			seen[k] = true
		}
	}
}
