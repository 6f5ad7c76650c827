// Package eventually waits in tests for a condition that becomes true asynchronously.
// Its wait is a hang guard, not a timing assertion.
package eventually

import (
	"testing"
	"time"
)

// HangGuard is how long True waits before it gives up: long enough for a loaded machine,
// short enough that a broken test ends.
const HangGuard = 20 * time.Second

// True polls cond every 10 ms until it holds; after HangGuard it fails t, naming what it
// waited for.
func True(t testing.TB, what string, cond func() bool) {
	t.Helper()
	wait(t, what, cond, HangGuard)
}

func wait(t testing.TB, what string, cond func() bool, guard time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(guard); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", guard, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Took is True that also returns how long cond took to hold, for a test to print as a
// figure (the bound is the hang guard still: timings are measured, never asserted).
func Took(t testing.TB, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	wait(t, what, cond, HangGuard)
	return time.Since(start)
}
