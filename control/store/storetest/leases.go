package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"tsconnect/control/store"
)

// Leases checks the lease on background work through two stores on one database (as two
// replicas): one holder at a time, renewed by it, taken over once expired or released, and
// of many racing for a free lease exactly one wins.
func Leases(t *testing.T, a, b store.Store) {
	ctx := context.Background()
	t0 := time.Unix(1_800_000_000, 0).UTC()
	try := func(s store.Store, name, holder string, at time.Duration) bool {
		t.Helper()
		var ok bool
		err := s.Update(ctx, func(tx store.Tx) (err error) {
			ok, err = tx.TryLease(name, holder, t0.Add(at), 10*time.Second)
			return err
		})
		if err != nil {
			t.Fatalf("%s takes %s at +%v: %v", holder, name, at, err)
		}
		return ok
	}
	for _, step := range []struct {
		s      store.Store
		holder string
		at     time.Duration
		want   bool
	}{
		{a, "A", 0, true},                 // free
		{b, "B", time.Second, false},      // A's
		{a, "A", 5 * time.Second, true},   // renewed until +15s
		{b, "B", 14 * time.Second, false}, // still A's
		{b, "B", 15 * time.Second, true},  // expired: B takes over
		{a, "A", 16 * time.Second, false}, // B's now
	} {
		if got := try(step.s, "sweep", step.holder, step.at); got != step.want {
			t.Fatalf("%s takes the lease at +%v: %v, want %v", step.holder, step.at, got, step.want)
		}
	}
	if !try(a, "expiry", "A", 16*time.Second) {
		t.Fatal("another lease is not free for A")
	}
	if err := a.Update(ctx, func(tx store.Tx) error { return tx.ReleaseLease("sweep", "A") }); err != nil {
		t.Fatal(err) // not A's: nothing happens
	}
	if try(a, "sweep", "A", 17*time.Second) {
		t.Fatal("A took B's lease after releasing it (it never had it)")
	}
	if err := b.Update(ctx, func(tx store.Tx) error { return tx.ReleaseLease("sweep", "B") }); err != nil {
		t.Fatal(err)
	}
	if !try(a, "sweep", "A", 17*time.Second) {
		t.Fatal("A did not take the lease B released")
	}
	err := a.Update(ctx, func(tx store.Tx) error {
		_, err := tx.TryLease("sweep", strings.Repeat("x", store.MaxLeaseName+1), t0, time.Second)
		return err
	})
	if err == nil {
		t.Fatal("a holder name over the limit was accepted")
	}

	// A race for a free lease: exactly one of 16 holders on the two stores wins.
	var mu sync.Mutex
	var winners []string
	alternate(a, b, 16, func(s store.Store, i int) {
		holder := fmt.Sprintf("replica-%d", i)
		if try(s, "race", holder, 0) {
			mu.Lock()
			winners = append(winners, holder)
			mu.Unlock()
		}
	})
	if len(winners) != 1 {
		t.Fatalf("winners of a free lease: %v; want exactly one", winners)
	}
}
