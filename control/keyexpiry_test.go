package control

import (
	"context"
	"testing"
	"time"

	"tsconnect/controlws"
	"tsconnect/internal/metrics/metricstest"
)

// TestNodeKeyExpiry: with an 8 s lifetime, a node's key expiry travels in its peers' maps;
// when it passes, the key timer takes the node out of its peer's map (no poll, no other
// change to trigger it) and the relay refuses it; the node cannot register again without
// re-authenticating; an auth key of its owner does, keeping the node, and an auth key of
// someone else is refused.
func TestNodeKeyExpiry(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if err := e.s.SetNodeKeyExpiry(ctx, time.Second); err == nil {
		t.Fatal("a 1 s key lifetime was accepted")
	}
	if err := e.s.SetNodeKeyExpiry(ctx, 8*time.Second); err != nil {
		t.Fatal(err)
	}
	ada, bob := e.user("ada@example.com"), e.user("bob@example.com")
	b, bn := e.mustRegister(e.authKey(AuthKeyOptions{User: ada.ID}), "b")
	if err := e.s.SetNodeKeyExpiry(ctx, time.Hour); err != nil { // for a, and b's next key
		t.Fatal(err)
	}
	a, an := e.mustRegister(e.authKey(AuthKeyOptions{User: ada.ID}), "a")
	if d := time.Until(bn.KeyExpiry); d < 5*time.Second || d > 9*time.Second {
		t.Fatalf("b's key expires in %v, want about 8 s", d)
	}
	wa, wb := a.watch(t), b.watch(t)
	nm := wa.waitFor(t, "b in a's map", func(nm *controlws.NetworkMap) bool { return hasPeer(nm, bn.ID) })
	if p, _ := peer(nm, bn.ID); !p.KeyExpiry.Equal(bn.KeyExpiry) {
		t.Errorf("b's keyExpiry in a's map is %v, want %v", p.KeyExpiry, bn.KeyExpiry)
	}
	if !nm.Self.KeyExpiry.Equal(an.KeyExpiry) {
		t.Errorf("a's own keyExpiry is %v, want %v", nm.Self.KeyExpiry, an.KeyExpiry)
	}
	// a re-authenticates before its key expires (ada's key): same node, a new lifetime.
	a2 := &machine{mk: a.mk, nk: newKey(), c: e.dial(a.mk)}
	r, err := a2.c.Register(ctx, controlws.RegisterRequest{AuthKey: e.authKey(AuthKeyOptions{User: ada.ID}), NodeKey: a2.nk.Public(), Reauth: true})
	if err != nil || r.Node.ID != an.ID || r.Node.Name != an.Name || r.Node.Key != a2.nk.Public() || !r.Node.KeyExpiry.After(an.KeyExpiry) {
		t.Fatalf("re-authenticating a: %+v %v", r, err)
	}
	wa2 := a2.watch(t)
	wa2.waitFor(t, "b gone from a's map when b's key expired", func(nm *controlws.NetworkMap) bool { return !hasPeer(nm, bn.ID) })
	// b's own stream stays (so it can learn why and re-authenticate) but shows no peer.
	wb.waitFor(t, "b's own map with its key expired and no peers", func(nm *controlws.NetworkMap) bool {
		return nm.Self.KeyExpired(time.Now()) && len(nm.Peers) == 0
	})
	if err := e.s.verifyDERPClient(ctx, b.nk.Public()); err == nil {
		t.Error("the relay admits b's expired key")
	}
	st, err := e.s.NodeState(ctx, bn.ID)
	if err != nil || !st.KeyExpired || st.LoggedOut {
		t.Errorf("b's state after expiry: %+v %v", st, err)
	}
	if m := metricstest.Of(t, e.s.Collector()); m[`tsconnect_control_nodes{state="key_expired"}`] != 1 || m[`tsconnect_control_nodes{state="online"}`] != 1 {
		t.Errorf("nodes by state after b's key expired: key_expired %v, online %v; want 1 and 1 (a)",
			m[`tsconnect_control_nodes{state="key_expired"}`], m[`tsconnect_control_nodes{state="online"}`])
	}
	// Without re-authenticating, b cannot register its way back in.
	wantCode(t, errOf(b.register("", "b")), controlws.CodeNodeKeyExpired)
	b.nk = newKey()
	wantCode(t, errOf(b.register("", "b")), controlws.CodeNodeKeyExpired)
	// bob's key does not re-authenticate ada's node.
	wantCode(t, errOf(b.register(e.authKey(AuthKeyOptions{User: bob.ID}), "b")), controlws.CodeInvalidKey)
	r, err = b.register(e.authKey(AuthKeyOptions{User: ada.ID}), "b")
	if err != nil || r.Node.ID != bn.ID || r.Node.Name != bn.Name || r.Node.User != ada.ID || r.Node.KeyExpiry.Before(time.Now()) {
		t.Fatalf("re-authenticating b: %+v %v", r, err)
	}
	wa2.waitFor(t, "b back in a's map", func(nm *controlws.NetworkMap) bool { return hasPeer(nm, bn.ID) })
}

// TestNodeKeyExpiryDisabled: an admin disables the expiry of an expired node's key: the
// node is back in its peers' maps with no expiry, and after a restart it still has none.
func TestNodeKeyExpiryDisabled(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if err := e.s.SetNodeKeyExpiry(ctx, 8*time.Second); err != nil {
		t.Fatal(err)
	}
	u := e.user("ada@example.com")
	_, bn := e.mustRegister(e.authKey(AuthKeyOptions{User: u.ID}), "b")
	if err := e.s.SetNodeKeyExpiry(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	a, _ := e.mustRegister(e.authKey(AuthKeyOptions{User: u.ID}), "a")
	wa := a.watch(t)
	wa.waitFor(t, "b in a's map", func(nm *controlws.NetworkMap) bool { return hasPeer(nm, bn.ID) })
	wa.waitFor(t, "b gone when its key expired", func(nm *controlws.NetworkMap) bool { return !hasPeer(nm, bn.ID) })
	st, err := e.s.SetNodeKeyExpiryDisabled(ctx, bn.ID, true)
	if err != nil || !st.KeyExpiryDisabled || st.KeyExpired || !st.Node.KeyExpiry.IsZero() {
		t.Fatalf("disabling b's key expiry: %+v %v", st, err)
	}
	nm := wa.waitFor(t, "b back", func(nm *controlws.NetworkMap) bool { return hasPeer(nm, bn.ID) })
	if p, _ := peer(nm, bn.ID); !p.KeyExpiry.IsZero() {
		t.Errorf("b's keyExpiry in a's map is %v, want none", p.KeyExpiry)
	}
	e.restart()
	if st, err = e.s.NodeState(ctx, bn.ID); err != nil || !st.KeyExpiryDisabled || st.KeyExpired {
		t.Errorf("after a restart: %+v %v", st, err)
	}
	if d, err := e.s.NodeKeyExpiry(ctx); err != nil || d != time.Hour {
		t.Errorf("key lifetime after a restart: %v %v", d, err)
	}
	// Enabled again, the key keeps the expiry it had, long past: it is expired at once.
	if st, err = e.s.SetNodeKeyExpiryDisabled(ctx, bn.ID, false); err != nil || !st.KeyExpired {
		t.Errorf("enabling b's key expiry again: %+v %v", st, err)
	}
	if _, err := e.s.SetNodeKeyExpiryDisabled(ctx, 999, true); err == nil {
		t.Error("disabled the key expiry of a node that does not exist")
	}
}

func errOf[T any](_ T, err error) error { return err }
