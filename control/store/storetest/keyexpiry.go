package storetest

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"tsconnect/control/store"
	"tsconnect/key"
)

// keyExpiry: a node's key expiry and its "expiry disabled" flag are kept by insert and
// update, and read back the same by every lookup.
func keyExpiry(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	ctx := context.Background()
	t0 := time.Unix(1_800_000_000, 123456789).UTC()
	n := store.Node{Name: "n", MachineKey: key.NewPrivate().Public(), NodeKey: key.NewPrivate().Public(),
		IPv4: netip.MustParseAddr("100.64.0.1"), IPv6: netip.MustParseAddr("fd7a::1"), Created: t0,
		KeyExpiry: t0.Add(180 * 24 * time.Hour)}
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.InsertNode(&n) }); err != nil {
		t.Fatal(err)
	}
	read := func() store.Node {
		t.Helper()
		var got store.Node
		if err := s.Read(ctx, func(tx store.Tx) error {
			var err error
			got, err = tx.NodeByNodeKey(n.NodeKey)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := read(); !got.KeyExpiry.Equal(n.KeyExpiry) || got.KeyExpiryDisabled {
		t.Errorf("inserted: expiry %v disabled %v, want %v false", got.KeyExpiry, got.KeyExpiryDisabled, n.KeyExpiry)
	}
	n.KeyExpiryDisabled, n.KeyExpiry = true, t0.Add(time.Hour)
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.UpdateNode(&n) }); err != nil {
		t.Fatal(err)
	}
	if got := read(); !got.KeyExpiry.Equal(n.KeyExpiry) || !got.KeyExpiryDisabled {
		t.Errorf("updated: expiry %v disabled %v, want %v true", got.KeyExpiry, got.KeyExpiryDisabled, n.KeyExpiry)
	}
	n.KeyExpiryDisabled = false
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.UpdateNode(&n) }); err != nil {
		t.Fatal(err)
	}
	if got := read(); got.KeyExpiryDisabled {
		t.Error("expiry still disabled after enabling it")
	}
}
