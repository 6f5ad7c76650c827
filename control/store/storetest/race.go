package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"tsconnect/control/store"
	"tsconnect/key"
)

var errKeyUsed = errors.New("auth key already used")

// alternate runs fn(s, i) for every i below n at once, s being a for even i and b for odd i
// (two replicas on one database), and returns when all have.
func alternate(a, b store.Store, n int, fn func(s store.Store, i int)) {
	var wg sync.WaitGroup
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(s, i)
		}()
	}
	wg.Wait()
}

// SingleUseKeyRace races registrations with one single-use key through two stores on the
// same database (as two control replicas would) and checks exactly one node registered.
func SingleUseKeyRace(t *testing.T, a, b store.Store) {
	ctx := context.Background()
	now := time.Now().UTC()
	err := a.Update(ctx, func(tx store.Tx) error {
		return tx.InsertAuthKey(&store.AuthKey{Hash: []byte{1}, Prefix: "once", Created: now, Tags: []string{"tag:ci"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	const perStore = 8
	errs := make(chan error, 2*perStore)
	alternate(a, b, 2*perStore, func(s store.Store, i int) {
		errs <- s.Update(ctx, func(tx store.Tx) error {
			k, err := tx.AuthKeyByPrefix("once")
			if err != nil {
				return err
			}
			if k.Used {
				return errKeyUsed
			}
			k.Used, k.UsedAt = true, time.Now().UTC()
			if err := tx.UpdateAuthKey(&k); err != nil {
				return err
			}
			n := store.Node{Name: fmt.Sprintf("n%d", i), MachineKey: key.NewPrivate().Public(), NodeKey: key.NewPrivate().Public(),
				Tags: k.Tags, IPv4: netip.AddrFrom4([4]byte{100, 64, 0, byte(i + 1)}),
				IPv6: netip.MustParseAddr(fmt.Sprintf("fd7a::%d", i+1)), Created: now}
			return tx.InsertNode(&n)
		})
	})
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, errKeyUsed):
			t.Errorf("a registration failed otherwise than on the used key: %v", err)
		}
	}
	var nodes []store.Node
	err = b.Read(ctx, func(tx store.Tx) (err error) {
		nodes, err = tx.Nodes()
		return err
	})
	if err != nil || ok != 1 || len(nodes) != 1 {
		t.Fatalf("%d registrations succeeded, %d nodes (%v); want exactly one of each", ok, len(nodes), err)
	}
}
