package control

import (
	"context"
	"sync"
)

// changeHub tells watchers that something changed. Its zero value is ready.
type changeHub struct {
	mu       sync.Mutex
	watchers map[chan struct{}]struct{}
}

// notify pokes every watcher without blocking: a watcher with a poke pending gets no
// second one, which is what coalesces bursts.
func (h *changeHub) notify() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.watchers {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// WatchChanges calls fn (from its own goroutine, coalesced: a burst of changes during one
// call gives one more call) after any change to nodes (including online state, last seen,
// hostinfo), users, keys or policy, until ctx ends. It returns at once.
func (s *Server) WatchChanges(ctx context.Context, fn func()) {
	c := make(chan struct{}, 1)
	h := &s.changes
	h.mu.Lock()
	if h.watchers == nil {
		h.watchers = map[chan struct{}]struct{}{}
	}
	h.watchers[c] = struct{}{}
	h.mu.Unlock()
	go func() {
		defer func() {
			h.mu.Lock()
			delete(h.watchers, c)
			h.mu.Unlock()
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.ctx.Done():
				return
			case <-c:
				fn()
			}
		}
	}()
}
