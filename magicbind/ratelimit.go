package magicbind

import (
	"sync"

	"golang.org/x/time/rate"
)

// Limits on disco traffic from the network.
const (
	// PingRate and PingBurst bound the disco messages taken from one source (a UDP address
	// or a relay key) per second; more are dropped unopened.
	PingRate  = 20
	PingBurst = 40
	// maxSources bounds the sources with a rate limiter; past it the table starts over,
	// so a flood of spoofed sources costs memory only up to this.
	maxSources = 4096
)

// sourceLimiter is a per-source token bucket of bounded size.
type sourceLimiter[K comparable] struct {
	mu  sync.Mutex
	per map[K]*rate.Limiter
}

// allow takes one token from src's bucket.
func (l *sourceLimiter[K]) allow(src K) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.per[src]
	if lim == nil {
		if l.per == nil || len(l.per) >= maxSources {
			l.per = make(map[K]*rate.Limiter)
		}
		lim = rate.NewLimiter(PingRate, PingBurst)
		l.per[src] = lim
	}
	return lim.Allow()
}
