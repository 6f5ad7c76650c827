package storetest

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"tsconnect/control/store"
	"tsconnect/key"
)

// seenAndUnguarded: SetSeen writes a node's connection (last seen, host info, no longer
// expired) and nothing else; it and the writes that cannot conflict (settings, auth key use,
// last seen) leave a transaction that goes on to a refused insert still usable, as a
// conflict-guarded write does.
func seenAndUnguarded(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	n := store.Node{Name: "n", MachineKey: key.NewPrivate().Public(), NodeKey: key.NewPrivate().Public(),
		IPv4: netip.MustParseAddr("100.64.0.1"), IPv6: netip.MustParseAddr("fd00:1:2::6440:1"),
		Hostinfo: []byte(`{"os":"linux"}`), Created: now, LastSeen: now, Expired: now, Tags: []string{"tag:x"}}
	k := store.AuthKey{Hash: []byte{1, 2}, Prefix: "p", Created: now, Tags: []string{"tag:x"}}
	if err := s.Update(ctx, func(tx store.Tx) error {
		if err := tx.InsertAuthKey(&k); err != nil {
			return err
		}
		return tx.InsertNode(&n)
	}); err != nil {
		t.Fatal(err)
	}
	later := now.Add(time.Minute)
	err := s.Update(ctx, func(tx store.Tx) error {
		seen := n
		seen.LastSeen, seen.Hostinfo = later, []byte(`{"os":"plan9"}`)
		seen.Name = "ignored" // SetSeen writes no other column
		if err := tx.SetSeen(&seen); err != nil {
			return err
		}
		if err := tx.SetSetting("cursor", "7"); err != nil {
			return err
		}
		k.Used, k.UsedAt = true, later
		if err := tx.UpdateAuthKey(&k); err != nil {
			return err
		}
		if err := tx.SetLastSeen(n.ID, later); err != nil {
			return err
		}
		dup := n // same name, keys and addresses: refused, the transaction goes on
		dup.ID = 0
		if err := tx.InsertNode(&dup); err == nil {
			t.Error("a duplicate node was inserted")
		}
		return tx.SetSetting("after", "1")
	})
	if err != nil {
		t.Fatalf("the transaction after the refused insert: %v", err)
	}
	s.Read(ctx, func(tx store.Tx) error {
		got, err := tx.NodeByID(n.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.LastSeen.Equal(later) || string(got.Hostinfo) != `{"os":"plan9"}` || !got.Expired.IsZero() || got.Name != "n" {
			t.Errorf("after SetSeen: last seen %v, host info %s, expired %v, name %q", got.LastSeen, got.Hostinfo, got.Expired, got.Name)
		}
		if v, err := tx.Setting("after"); err != nil || v != "1" {
			t.Errorf("the write after the refused insert: %q, %v", v, err)
		}
		if got, err := tx.AuthKeyByPrefix("p"); err != nil || !got.Used {
			t.Errorf("auth key after UpdateAuthKey: %+v, %v", got, err)
		}
		return nil
	})
	loggedOut := n
	loggedOut.LoggedOut = true
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.SetSeen(&loggedOut) }); err == nil {
		t.Error("SetSeen of a logged-out node succeeded")
	}
}
