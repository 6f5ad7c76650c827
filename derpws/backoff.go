package derpws

import (
	"time"

	ibackoff "tsconnect/internal/backoff"
)

// Reconnect back-off of a client: the first try after losing a connection is immediate, later
// tries wait a jittered, doubling delay capped at backoffMax (internal/backoff), and a
// connection that stayed up for stableAfter resets it. A relay that accepts and drops at once
// therefore still backs off.
const (
	backoffMin  = 100 * time.Millisecond
	backoffMax  = 1 * time.Second
	stableAfter = 2 * time.Second
)

// backoff is the reconnect delay state of one client's connection loop.
type backoff struct {
	tries int // tries since the last stable connection
	b     ibackoff.Backoff
}

// next returns the delay before the next try and counts it.
func (b *backoff) next() time.Duration {
	b.tries++
	if b.tries == 1 {
		return 0
	}
	if b.b.Max == 0 {
		b.b = ibackoff.Backoff{Min: backoffMin, Max: backoffMax}
	}
	return b.b.Next()
}

// connected notes a connection that lasted up; a stable one resets the back-off.
func (b *backoff) connected(up time.Duration) {
	if up >= stableAfter {
		b.tries = 0
		b.b.Reset()
	}
}
