package storetest

import (
	"context"
	"fmt"
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

// seenInBatches: NodesOfKeys finds a node key's live node and a machine's newest node in one
// statement; NodesByMachineKeys finds each machine's newest node (deleted or not) across
// more keys than one statement names, and SetSeenAll writes each node's own last seen and
// host info as SetSeen would; a missing node fails it whole, leaving the old state.
func seenInBatches(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	const count = 300 // more than one statement's batch
	nodes := make([]store.Node, count)
	gone := key.NewPrivate().Public() // a machine with an old deleted node and a new live one
	var oldID int64
	if err := s.Update(ctx, func(tx store.Tx) error {
		old := store.Node{Name: "old", MachineKey: gone, NodeKey: key.NewPrivate().Public(),
			IPv4: netip.MustParseAddr("100.65.0.1"), IPv6: netip.MustParseAddr("fd00:1:2::6541:1"), Created: now, Deleted: now}
		if err := tx.InsertNode(&old); err != nil {
			return err
		}
		oldID = old.ID
		for i := range nodes {
			mk := key.NewPrivate().Public()
			if i == 0 {
				mk = gone
			}
			nodes[i] = store.Node{Name: fmt.Sprint("n", i), MachineKey: mk, NodeKey: key.NewPrivate().Public(),
				IPv4: netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)}), IPv6: netip.AddrFrom16([16]byte{0xfd, 15: byte(i), 14: byte(i >> 8)}),
				Hostinfo: []byte(`{"os":"linux"}`), Created: now, LastSeen: now, Expired: now}
			if err := tx.InsertNode(&nodes[i]); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ks := []key.Public{key.NewPrivate().Public()} // a machine without a node
	for _, n := range nodes {
		ks = append(ks, n.MachineKey)
	}
	later := now.Add(time.Minute)
	err := s.Update(ctx, func(tx store.Tx) error {
		found, err := tx.NodesByMachineKeys(ks)
		if err != nil {
			return err
		}
		if len(found) != count {
			t.Errorf("NodesByMachineKeys found %d nodes, want %d", len(found), count)
		}
		if got := found[gone]; got.ID != nodes[0].ID || got.ID == oldID {
			t.Errorf("machine with a deleted and a live node: got node %d, want the newest %d", got.ID, nodes[0].ID)
		}
		// NodesOfKeys: another node's node key beside the machine's newest node; none of either.
		byNK, byMK, err := tx.NodesOfKeys(nodes[5].NodeKey, gone)
		if err != nil || byNK.ID != nodes[5].ID || byMK.ID != nodes[0].ID {
			t.Errorf("NodesOfKeys(node 5's key, machine of node 0): %d, %d, %v; want %d, %d", byNK.ID, byMK.ID, err, nodes[5].ID, nodes[0].ID)
		}
		byNK, byMK, err = tx.NodesOfKeys(key.NewPrivate().Public(), key.NewPrivate().Public())
		if err != nil || byNK.ID != 0 || byMK.ID != 0 {
			t.Errorf("NodesOfKeys of unknown keys: %d, %d, %v; want none", byNK.ID, byMK.ID, err)
		}
		var seen []*store.Node
		for i := range nodes {
			n := found[nodes[i].MachineKey]
			n.LastSeen, n.Hostinfo = later.Add(time.Duration(i)*time.Second), []byte(fmt.Sprintf(`{"hostname":"h%d"}`, i))
			seen = append(seen, &n)
		}
		return tx.SetSeenAll(seen)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Read(ctx, func(tx store.Tx) error {
		for i, n := range nodes {
			got, err := tx.NodeByID(n.ID)
			if err != nil {
				t.Fatal(err)
			}
			if want := later.Add(time.Duration(i) * time.Second); !got.LastSeen.Equal(want) || string(got.Hostinfo) != fmt.Sprintf(`{"hostname":"h%d"}`, i) || !got.Expired.IsZero() {
				t.Fatalf("node %d after SetSeenAll: last seen %v (want %v), host info %s, expired %v", i, got.LastSeen, want, got.Hostinfo, got.Expired)
			}
		}
		return nil
	})
	missing := nodes[1]
	missing.ID = 1 << 40
	first := nodes[2]
	first.LastSeen = later.Add(time.Hour)
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.SetSeenAll([]*store.Node{&first, &missing}) }); err == nil {
		t.Error("SetSeenAll with a missing node succeeded")
	}
	s.Read(ctx, func(tx store.Tx) error {
		if got, err := tx.NodeByID(first.ID); err != nil || got.LastSeen.Equal(first.LastSeen) {
			t.Errorf("the refused SetSeenAll left node %d seen at %v (%v)", first.ID, got.LastSeen, err)
		}
		return nil
	})
}
