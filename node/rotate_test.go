//go:build !js

package node

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"tsconnect/control"
	"tsconnect/controlws"
	"tsconnect/internal/eventually"
	"tsconnect/key"
)

// TestLoginCutShortSettles: a re-authentication saved its next key and stopped, once after
// control took the new key and once before control heard of it. Either way the node
// starts again as the same node on the next key, which its peer's map carries.
func TestLoginCutShortSettles(t *testing.T) {
	tc := startControl(t)
	peer := startNode(t, tc, "peer")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := newNode(t, tc, "a", Options{StateDir: dir, AuthKey: tc.authKey(control.AuthKeyOptions{})})
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	self := a.NetMap().Self
	a.Close()
	for _, controlHasIt := range []bool{true, false} {
		id, err := loadIdentity(dir)
		if err != nil {
			t.Fatal(err)
		}
		next := key.NewPrivate()
		id.NextNodeKey = next
		if err := id.save(dir); err != nil {
			t.Fatal(err)
		}
		if controlHasIt { // the re-authentication reached control, then the node stopped
			cc, err := controlws.Dial(ctx, controlws.DialOptions{ServerURL: tc.URL, MachineKey: id.MachineKey})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cc.Register(ctx, controlws.RegisterRequest{AuthKey: tc.authKey(control.AuthKeyOptions{}), NodeKey: next.Public(), Reauth: true}); err != nil {
				t.Fatal(err)
			}
			cc.Close()
		}
		again := newNode(t, tc, "a", Options{StateDir: dir})
		if err := again.Start(ctx); err != nil {
			t.Fatalf("control has the new key %v: start: %v", controlHasIt, err)
		}
		if got := again.NetMap().Self; got.ID != self.ID || got.Key != next.Public() || again.NodeKey() != next.Public() {
			t.Errorf("control has the new key %v: started as node %d key %s, want node %d key %s", controlHasIt, got.ID, got.Key.ShortString(), self.ID, next.Public().ShortString())
		}
		peer.waitMap(t, "a's new key", func(nm *controlws.NetworkMap) bool {
			p, ok := nm.PeerByName(self.Name)
			return ok && p.Key == next.Public()
		})
		again.Close()
		b, _ := os.ReadFile(filepath.Join(dir, identityFile))
		var saved identity
		if json.Unmarshal(b, &saved) != nil || !saved.NextNodeKey.IsZero() || saved.NodeKey != next {
			t.Errorf("saved identity after settling: next key set %v, node key %s", !saved.NextNodeKey.IsZero(), saved.NodeKey.Public().ShortString())
		}
	}
}

// TestStartWithExpiredKey: a node whose key expired starts anyway (no relay admits it, so
// it does not wait for one, nor keep dialling one) in state key-expired, with no peers; Login with an auth key of
// its owner brings it back to running, and its peer sees it again.
func TestStartWithExpiredKey(t *testing.T) {
	tc := startControl(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := tc.Control.SetNodeKeyExpiry(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a := newNode(t, tc, "a", Options{StateDir: dir, AuthKey: tc.authKey(control.AuthKeyOptions{})})
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	exp := a.NetMap().Self.KeyExpiry
	a.Close()
	if err := tc.Control.SetNodeKeyExpiry(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	peer := startNode(t, tc, "peer")
	time.Sleep(time.Until(exp))
	again := newNode(t, tc, "a", Options{StateDir: dir})
	if err := again.Start(ctx); err != nil {
		t.Fatalf("start with an expired key: %v", err)
	}
	if st := again.State(); st != StateKeyExpired || len(again.NetMap().Peers) != 0 {
		t.Fatalf("state %s with %d peers; want %s and none", st, len(again.NetMap().Peers), StateKeyExpired)
	}
	// No relay admits the expired key: the node does not keep redialling one.
	again.mu.Lock()
	regions := again.relay.Regions()
	again.mu.Unlock()
	if len(regions) != 0 {
		t.Errorf("with its key expired the node keeps relay connections to regions %v", regions)
	}
	if err := again.Login(ctx, LoginOptions{OnLoginURL: func(string) {}, AuthKey: tc.authKey(control.AuthKeyOptions{})}); err != nil {
		t.Fatal(err)
	}
	if st := again.State(); st != StateRunning {
		t.Errorf("state %s after Login, want %s", st, StateRunning)
	}
	peer.waitMap(t, "a back", hasPeer("a"))
	eventually.True(t, "a's relay up under its new key", again.HomeUp)
}

// TestExpiryDisabledWhileExpired: an admin disables the expiry of a running node whose key
// expired: it is running again, with its relay connection back, and its peer sees it.
func TestExpiryDisabledWhileExpired(t *testing.T) {
	tc := startControl(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := tc.Control.SetNodeKeyExpiry(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	a := startNode(t, tc, "a")
	if err := tc.Control.SetNodeKeyExpiry(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	peer := startNode(t, tc, "peer")
	peer.waitMap(t, "a", hasPeer("a"))
	eventually.True(t, "a's key to expire", func() bool { return a.State() == StateKeyExpired && !a.HomeUp() })
	peer.waitMap(t, "a gone", func(nm *controlws.NetworkMap) bool { return !hasPeer("a")(nm) })
	if _, err := tc.Control.SetNodeKeyExpiryDisabled(ctx, a.NetMap().Self.ID, true); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, "a running with its relay up", func() bool { return a.State() == StateRunning && a.HomeUp() })
	peer.waitMap(t, "a back", hasPeer("a"))
}
