package backoff

import (
	"testing"
	"time"
)

// TestBackoffDoublesWithinBoundsAndResets: each delay lies in [d/2, d] for d doubling
// from Min, never above Max, and Reset starts over from Min.
func TestBackoffDoublesWithinBoundsAndResets(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: 1500 * time.Millisecond}
	for round := 0; round < 2; round++ {
		want := []time.Duration{100, 200, 400, 800, 1500, 1500, 1500}
		for i, d := range want {
			d *= time.Millisecond
			if got := b.Next(); got < d/2 || got > d {
				t.Fatalf("round %d, try %d: delay %v; want within [%v, %v]", round, i, got, d/2, d)
			}
		}
		b.Reset()
	}
}

// TestJitterSpreads: many draws cover the lower and the upper half of [d/2, d], so clients
// that lost a server together do not retry together.
func TestJitterSpreads(t *testing.T) {
	const d = time.Second
	var low, high int
	for i := 0; i < 1000; i++ {
		j := Jitter(d)
		if j < d/2 || j > d {
			t.Fatalf("Jitter(%v) = %v; want within [%v, %v]", d, j, d/2, d)
		}
		if j < 3*d/4 {
			low++
		} else {
			high++
		}
	}
	if low < 300 || high < 300 {
		t.Errorf("1000 draws: %d in the lower quarter-second, %d in the upper; want both near 500", low, high)
	}
}
