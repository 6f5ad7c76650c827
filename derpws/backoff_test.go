package derpws

import (
	"testing"
	"time"
)

// TestBackoff: the first try after a loss is immediate, later ones grow but never wait more than
// backoffMax nor come back to back, and only a connection that stayed up resets the delay.
func TestBackoff(t *testing.T) {
	var b backoff
	if d := b.next(); d != 0 {
		t.Fatalf("first retry waits %v, want 0", d)
	}
	var last time.Duration
	for i := range 30 {
		d := b.next()
		if d < backoffMin/2 || d > backoffMax {
			t.Fatalf("retry %d waits %v, want within [%v, %v]", i+2, d, backoffMin/2, backoffMax)
		}
		last = d
	}
	if last < backoffMax/2 {
		t.Fatalf("after 30 failures the delay is %v, want it at the cap (%v..%v)", last, backoffMax/2, backoffMax)
	}
	b.connected(stableAfter / 2) // accepted and dropped at once: keep backing off
	if d := b.next(); d < backoffMax/2 {
		t.Fatalf("after a short-lived connection the retry waits %v, want still backed off", d)
	}
	b.connected(stableAfter)
	if d := b.next(); d != 0 {
		t.Fatalf("after a stable connection the first retry waits %v, want 0", d)
	}
}
