package control

import (
	"context"
	"testing"
	"time"

	"tsconnect/controlws"
	"tsconnect/internal/eventually"
)

func TestMapStream(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	u := e.user("ivy@example.com")
	secret := e.authKey(AuthKeyOptions{User: u.ID, Reusable: true})
	a, na := e.mustRegister(secret, "a")
	_, nb := e.mustRegister(secret, "b")

	wa := a.watch(t)
	nm := wa.waitFor(t, "full map", func(nm *controlws.NetworkMap) bool { return nm.Self.ID == na.ID })
	if len(nm.Peers) != 1 || nm.Peers[0].ID != nb.ID || nm.Peers[0].Online {
		t.Fatalf("first map peers %+v, want offline b", nm.Peers)
	}
	if nm.Domain != DefaultDomain || len(nm.Users) != 1 || nm.Users[0].LoginName != "ivy@example.com" {
		t.Fatalf("first map domain %q users %+v", nm.Domain, nm.Users)
	}
	r := nm.DERPMap.Regions[1]
	if r == nil || r.RegionCode != "tsc" || r.Nodes[0].HostName != "127.0.0.1" || !r.Nodes[0].InsecureForTests || r.Nodes[0].DERPPort == 0 {
		t.Fatalf("DERP map region 1: %+v", r)
	}
	if !nm.Self.Online {
		t.Error("self not online while streaming")
	}

	// A new node appears.
	c, nc := e.mustRegister(secret, "c")
	wa.waitFor(t, "c added", func(nm *controlws.NetworkMap) bool { return hasPeer(nm, nc.ID) })

	// c comes online, then reports SSH and a home relay.
	wc := c.watch(t)
	wc.waitFor(t, "c's full map", func(nm *controlws.NetworkMap) bool { return hasPeer(nm, na.ID) && hasPeer(nm, nb.ID) })
	wa.waitFor(t, "c online", func(nm *controlws.NetworkMap) bool { p, _ := peer(nm, nc.ID); return p.Online })
	if err := c.c.Update(ctx, controlws.Hostinfo{Hostname: "c", SSH: true, SSHHostKeys: []string{testHostKey(t)}, HomeDERP: 1, OS: "linux"}); err != nil {
		t.Fatal(err)
	}
	wa.waitFor(t, "c's hostinfo", func(nm *controlws.NetworkMap) bool {
		p, _ := peer(nm, nc.ID)
		return p.SSH && p.HomeDERP == 1 && len(p.SSHHostKeys) == 1
	})
	wc.waitFor(t, "c's own entry", func(nm *controlws.NetworkMap) bool { return nm.Self.SSH })

	// c goes offline.
	wc.cancel()
	c.c.Close()
	wa.waitFor(t, "c offline", func(nm *controlws.NetworkMap) bool { p, ok := peer(nm, nc.ID); return ok && !p.Online })
	for _, n := range e.nodes() {
		if n.ID == nc.ID && (n.Online || n.LastSeen.IsZero()) {
			t.Fatalf("Nodes: c %+v, want offline with a last-seen time", n)
		}
	}
}

func TestMapRequestRefusals(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	m := e.newMachine()
	err := m.c.WatchMaps(ctx, controlws.MapRequest{NodeKey: m.nk.Public()}, func(*controlws.NetworkMap) {})
	wantCode(t, err, controlws.CodeNotRegistered)

	u := e.user("jack@example.com")
	m2, _ := e.mustRegister(e.authKey(AuthKeyOptions{User: u.ID}), "j")
	other := e.dial(m2.mk)
	err = other.WatchMaps(ctx, controlws.MapRequest{NodeKey: newKey().Public()}, func(*controlws.NetworkMap) {})
	wantCode(t, err, controlws.CodeNotRegistered)
}

func TestDeleteNode(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	u := e.user("kim@example.com")
	secret := e.authKey(AuthKeyOptions{User: u.ID, Reusable: true})
	a, _ := e.mustRegister(secret, "a")
	b, nb := e.mustRegister(secret, "b")
	wa := a.watch(t)
	wb := b.watch(t)
	wa.waitFor(t, "b online", func(nm *controlws.NetworkMap) bool { p, _ := peer(nm, nb.ID); return p.Online })
	wb.waitFor(t, "b's map", func(nm *controlws.NetworkMap) bool { return nm.Self.ID == nb.ID })

	if err := e.s.DeleteNode(ctx, nb.ID); err != nil {
		t.Fatal(err)
	}
	wa.waitFor(t, "b removed", func(nm *controlws.NetworkMap) bool { return !hasPeer(nm, nb.ID) })
	wantCode(t, wb.ended(t), controlws.CodeNodeDeleted)
	if err := e.s.verifyDERPClient(ctx, b.nk.Public()); err == nil {
		t.Fatal("relay still admits the deleted node's key")
	}
	// Reconnecting is refused.
	again := e.dial(b.mk)
	err := again.WatchMaps(ctx, controlws.MapRequest{NodeKey: b.nk.Public()}, func(*controlws.NetworkMap) {})
	wantCode(t, err, controlws.CodeNodeDeleted)
	_, err = again.Register(ctx, controlws.RegisterRequest{NodeKey: b.nk.Public()})
	wantCode(t, err, controlws.CodeNodeDeleted)
	if len(e.nodes()) != 1 {
		t.Fatalf("nodes: %+v", e.nodes())
	}
	if err := e.s.DeleteNode(ctx, nb.ID); err == nil {
		t.Fatal("deleting a deleted node succeeded")
	}
	// With a new auth key the machine may come back, as a new node.
	r, err := again.Register(ctx, controlws.RegisterRequest{AuthKey: secret, NodeKey: b.nk.Public(), Hostinfo: controlws.Hostinfo{Hostname: "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Node.ID == nb.ID {
		t.Fatal("came back as the deleted node")
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	u := e.user("lee@example.com")
	a, _ := e.mustRegister(e.authKey(AuthKeyOptions{User: u.ID}), "a")
	wa := a.watch(t)

	eph, ne := e.mustRegister(e.authKey(AuthKeyOptions{User: u.ID, Ephemeral: true}), "browser")
	we := eph.watch(t)
	wa.waitFor(t, "ephemeral online", func(nm *controlws.NetworkMap) bool { p, _ := peer(nm, ne.ID); return p.Online })
	we.waitFor(t, "its map", func(nm *controlws.NetworkMap) bool { return nm.Self.ID == ne.ID })
	if err := eph.c.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	wantCode(t, we.ended(t), controlws.CodeNodeDeleted)
	wa.waitFor(t, "ephemeral gone", func(nm *controlws.NetworkMap) bool { return !hasPeer(nm, ne.ID) })
	for _, n := range e.nodes() {
		if n.ID == ne.ID {
			t.Fatal("ephemeral node still listed after logout")
		}
	}

	// A regular node is logged out: it leaves the maps, stays listed, needs a new key.
	p, np := e.mustRegister(e.authKey(AuthKeyOptions{User: u.ID}), "pc")
	wa.waitFor(t, "pc", func(nm *controlws.NetworkMap) bool { return hasPeer(nm, np.ID) })
	if err := p.c.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	wa.waitFor(t, "pc gone", func(nm *controlws.NetworkMap) bool { return !hasPeer(nm, np.ID) })
	p2 := e.dial(p.mk)
	_, err := p2.Register(ctx, controlws.RegisterRequest{NodeKey: p.nk.Public()})
	wantCode(t, err, controlws.CodeInvalidKey)
	r, err := p2.Register(ctx, controlws.RegisterRequest{AuthKey: e.authKey(AuthKeyOptions{User: u.ID}), NodeKey: p.nk.Public()})
	if err != nil {
		t.Fatal(err)
	}
	if r.Node.ID != np.ID || r.Node.Addresses[0] != np.Addresses[0] {
		t.Fatalf("logged back in as %+v, want node %d", r.Node, np.ID)
	}
	wa.waitFor(t, "pc back", func(nm *controlws.NetworkMap) bool { return hasPeer(nm, np.ID) })
}

func TestEphemeralGrace(t *testing.T) {
	const grace = 300 * time.Millisecond
	e := newEnv(t, func(c *Config) { c.EphemeralGrace = grace })
	u := e.user("max@example.com")
	secret := e.authKey(AuthKeyOptions{User: u.ID, Ephemeral: true, Reusable: true})
	gone, ng := e.mustRegister(secret, "gone")
	stays, ns := e.mustRegister(secret, "stays")
	w := stays.watch(t)
	w.waitFor(t, "map", func(nm *controlws.NetworkMap) bool { return hasPeer(nm, ng.ID) })
	// The connected one outlives several grace periods: by the clock, it was last seen
	// that long ago when the sweep that takes gone runs.
	e.clock.Advance(3 * grace)
	gone.c.Close()
	e.clock.Advance(2 * grace)
	w.waitFor(t, "disconnected ephemeral node swept", func(nm *controlws.NetworkMap) bool { return !hasPeer(nm, ng.ID) })
	found := false
	for _, n := range e.nodes() {
		found = found || n.ID == ns.ID
		if n.ID == ng.ID {
			t.Fatal("swept node still listed")
		}
	}
	if !found {
		t.Fatal("connected ephemeral node was swept")
	}
}

// TestEphemeralSweptAtStartup: a node that went stale while the server was down goes at
// the first sweep, which runs at start (the grace is too long for any later sweep or real
// time to do it during the test).
func TestEphemeralSweptAtStartup(t *testing.T) {
	const grace = MaxEphemeralGrace
	e := newEnv(t, func(c *Config) { c.EphemeralGrace = grace })
	u := e.user("ned@example.com")
	_, n := e.mustRegister(e.authKey(AuthKeyOptions{User: u.ID, Ephemeral: true}), "e")
	_, keep := e.mustRegister(e.authKey(AuthKeyOptions{User: u.ID}), "keep")
	e.s.Close()
	e.clock.Advance(2 * grace) // stale while the server is down
	e.start()
	eventually.True(t, "stale ephemeral node deleted at startup", func() bool {
		for _, x := range e.nodes() {
			if x.ID == n.ID {
				return false
			}
		}
		return true
	})
	if ns := e.nodes(); len(ns) != 1 || ns[0].ID != keep.ID {
		t.Fatalf("nodes %+v, want only keep", ns)
	}
}
