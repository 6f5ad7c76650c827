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

// Limits on the pings a node sends and on the disco messages it opens from addresses not
// yet proven for their claimed peer (see Counters.PingsThrottled).
const (
	// PeerPingRate and PeerPingBurst bound the pings sent to one peer, over all its
	// endpoints and the relay.
	PeerPingRate  = 10
	PeerPingBurst = 20
	// TotalPingRate and TotalPingBurst bound the pings a node sends to all its peers.
	TotalPingRate  = 200
	TotalPingBurst = 200
	// UnprovenRate and UnprovenBurst bound the disco messages opened per claimed peer from
	// UDP addresses that are not yet that peer's (not in its map endpoints, not the source
	// of a valid message of it): a flood of forged messages claiming a peer costs at most
	// this many box openings, and the peer's known addresses are never throttled by it.
	UnprovenRate  = 10
	UnprovenBurst = 10
	// UnprovenTotalRate and UnprovenTotalBurst bound the same over all peers.
	UnprovenTotalRate  = 100
	UnprovenTotalBurst = 100
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

// allowBoth takes a token from each of per (one peer's) and total (the node's), or from
// neither: a peer over its own rate does not use up the others' share.
func allowBoth(per, total *rate.Limiter) bool {
	if total.Tokens() < 1 || !per.Allow() {
		return false
	}
	return total.Allow()
}
