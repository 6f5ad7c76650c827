// Package flowcredit is a byte window between a producer and a consumer that returns credit
// as it finishes with the bytes: the flow control of terminal output and file transfers.
package flowcredit

import (
	"context"
	"sync"
)

// Credit is a byte window between a producer (the SSH output goroutines) and a consumer that
// returns credit as it finishes with the bytes.
type Credit struct {
	mu       sync.Mutex
	window   int
	inflight int
	freed    chan struct{} // cap 1: credit came back
}

// New returns a Credit of window bytes.
func New(window int) *Credit {
	return &Credit{window: window, freed: make(chan struct{}, 1)}
}

// Acquire takes n bytes of credit, waiting while the window is full; a chunk larger than the
// whole window goes through once nothing else is in flight. It returns false if ctx ends first.
func (c *Credit) Acquire(ctx context.Context, n int) bool {
	for {
		c.mu.Lock()
		if c.inflight == 0 || c.inflight+n <= c.window {
			c.inflight += n
			c.mu.Unlock()
			return true
		}
		c.mu.Unlock()
		select {
		case <-c.freed:
		case <-ctx.Done():
			return false
		}
	}
}

// Release returns n bytes of credit. A bogus n (negative, or more than is in flight) is clamped,
// so a confused consumer can only open the window, never make it grow beyond its size.
func (c *Credit) Release(n int) {
	if n <= 0 {
		return
	}
	c.mu.Lock()
	c.inflight = max(c.inflight-n, 0)
	c.mu.Unlock()
	select {
	case c.freed <- struct{}{}:
	default:
	}
}
