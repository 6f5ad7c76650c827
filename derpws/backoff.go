package derpws

import (
	"math/rand/v2"
	"time"
)

// Reconnect back-off of a client: the first try after losing a connection is immediate, later
// tries wait a jittered, doubling delay capped at backoffMax, and a connection that stayed up
// for stableAfter resets it. A relay that accepts and drops at once therefore still backs off.
const (
	backoffMin  = 100 * time.Millisecond
	backoffMax  = 2 * time.Second
	stableAfter = 2 * time.Second
)

// backoff is the reconnect delay state of one client's connection loop.
type backoff struct {
	failures int // tries since the last stable connection
}

// next returns the delay before the next try and counts it.
func (b *backoff) next() time.Duration {
	n := b.failures
	b.failures++
	if n == 0 {
		return 0
	}
	return jitter(min(backoffMax, backoffMin<<min(n-1, 16)))
}

// connected notes a connection that lasted up; a stable one resets the back-off.
func (b *backoff) connected(up time.Duration) {
	if up >= stableAfter {
		b.failures = 0
	}
}

// jitter returns a random duration in [d/2, d].
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}
