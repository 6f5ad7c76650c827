package storetest

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"tsconnect/control/store"
)

// loginFailures checks the failures behind the login rate limits: counted up to the limit
// within the window, then refused with the wait until the oldest counting one leaves it;
// released one at a time, newest first; reset per key, kept apart per scope; a scope at
// its bound of keys drops its oldest failures for a new key; bad arguments refused.
func loginFailures(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	ctx := context.Background()
	t0 := time.Unix(1_800_000_000, 0).UTC()
	const window, limit = 10 * time.Minute, 3
	reserve := func(scope, key string, at time.Duration, maxKeys int) time.Duration {
		t.Helper()
		var wait time.Duration
		err := s.Update(ctx, func(tx store.Tx) (err error) {
			wait, err = tx.ReserveFailure(scope, key, t0.Add(at), window, limit, maxKeys)
			return err
		})
		if err != nil {
			t.Fatalf("reserve %s/%s at +%v: %v", scope, key, at, err)
		}
		return wait
	}
	update := func(fn func(store.Tx) error) {
		t.Helper()
		if err := s.Update(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	for i := range limit {
		if w := reserve("user", "1", time.Duration(i)*time.Minute, 0); w != 0 {
			t.Fatalf("failure %d of %d refused (wait %v)", i+1, limit, w)
		}
	}
	if w := reserve("user", "1", 4*time.Minute, 0); w != 6*time.Minute {
		t.Fatalf("over the limit at +4m: wait %v; want 6m (the first failure leaves at +10m)", w)
	}
	if w := reserve("addr", "1", 4*time.Minute, 0); w != 0 {
		t.Fatalf("the same key in another scope refused (wait %v)", w)
	}
	update(func(tx store.Tx) error { return tx.ReleaseFailure("user", "1") })
	if w := reserve("user", "1", 5*time.Minute, 0); w != 0 {
		t.Fatalf("after a release: wait %v; want counted", w)
	}
	if w := reserve("user", "1", 10*time.Minute, 0); w != 0 {
		t.Fatalf("at +10m the first failure left the window: wait %v; want counted", w)
	}
	update(func(tx store.Tx) error { return tx.ResetFailures("user", "1") })
	for i := range limit {
		if w := reserve("user", "1", 11*time.Minute, 0); w != 0 {
			t.Fatalf("after a reset, failure %d refused (wait %v)", i+1, w)
		}
	}

	// A bounded scope: 10 keys with a failure each; an 11th key drops the oldest failure
	// (e0's), so e0 passes the whole limit again while e9 keeps its failure.
	for i := range 10 {
		reserve("email", "e"+strconv.Itoa(i), 20*time.Minute+time.Duration(i)*time.Second, 10)
	}
	reserve("email", "new", 21*time.Minute, 10)
	passes := func(key string) int {
		n := 0
		for reserve("email", key, 21*time.Minute, 10) == 0 {
			n++
		}
		return n
	}
	if n := passes("e9"); n != limit-1 {
		t.Fatalf("e9 passed %d more failures; want %d (its own kept)", n, limit-1)
	}
	if n := passes("e0"); n != limit {
		t.Fatalf("e0 passed %d more failures; want %d (its oldest one dropped)", n, limit)
	}

	err := s.Update(ctx, func(tx store.Tx) error {
		_, err := tx.ReserveFailure("", "k", t0, window, limit, 0)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "scope") {
		t.Fatalf("an empty scope: %v; want refused", err)
	}
	err = s.Update(ctx, func(tx store.Tx) error { return tx.ReleaseFailure("user", strings.Repeat("k", store.MaxFailureKey+1)) })
	if err == nil {
		t.Fatal("an over-long key accepted")
	}
}
