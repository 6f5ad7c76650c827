// Package backoff spaces out retries: jittered delays that double from a minimum up to a
// maximum, and start over after a success.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff is the delay before each retry. The zero value is not useful: set Min and Max.
// It is not safe for concurrent use.
type Backoff struct {
	// Min is the first delay (before jitter); Max caps the doubling (before jitter).
	Min, Max time.Duration
	cur      time.Duration
}

// Next returns the delay before the next try: Jitter(d), with d doubling from Min up to
// Max on each call, so no delay exceeds Max.
func (b *Backoff) Next() time.Duration {
	switch {
	case b.cur == 0:
		b.cur = b.Min
	default:
		b.cur = min(b.cur*2, b.Max)
	}
	return Jitter(b.cur)
}

// Reset starts over from Min, after a success.
func (b *Backoff) Reset() { b.cur = 0 }

// Jitter returns a delay uniform in [d/2, d]: many clients that lost the same server at the
// same moment spread their retries over half the interval instead of arriving together.
func Jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}
