package main

import (
	"context"
	"sync"
)

// OutputWindow is how many bytes of terminal output a session may have handed to the page
// that the page has not acknowledged (SSHSession.Ack) yet. While the window is full the
// session stops reading its SSH channel, so the channel's window closes and the remote side
// blocks: nothing between the remote PTY and the screen buffers without bound, and a Ctrl-C
// reaches the screen after at most this much (plus the SSH and TCP windows) already in flight.
// 1 MiB is about 20 ms of what xterm.js parses per second, several acknowledgements deep.
const OutputWindow = 1 << 20

// credit is a byte window between a producer (the SSH output goroutines) and a consumer that
// returns credit as it finishes with the bytes.
type credit struct {
	mu       sync.Mutex
	window   int
	inflight int
	freed    chan struct{} // cap 1: credit came back
}

func newCredit(window int) *credit {
	return &credit{window: window, freed: make(chan struct{}, 1)}
}

// acquire takes n bytes of credit, waiting while the window is full; a chunk larger than the
// whole window goes through once nothing else is in flight. It returns false if ctx ends first.
func (c *credit) acquire(ctx context.Context, n int) bool {
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

// release returns n bytes of credit. A bogus n (negative, or more than is in flight) is clamped,
// so a confused consumer can only open the window, never make it grow beyond its size.
func (c *credit) release(n int) {
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
