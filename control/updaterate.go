package control

import (
	"sync"

	"golang.org/x/time/rate"
)

// Limits on host-info updates: each one is sent on to every peer, so a node updating in a
// loop costs the whole network. Past them an update is refused with controlws.CodeTooMany
// and the node's last host info stays.
const (
	// UpdateBurst is how many updates a node may send at once.
	UpdateBurst = 20
	// UpdateRate is how many updates a second a node may send after its burst.
	UpdateRate = 1
)

// updateLimits holds a token bucket per node.
type updateLimits struct {
	mu sync.Mutex
	m  map[int64]*rate.Limiter
}

// allow takes a token of node id's bucket.
func (u *updateLimits) allow(id int64) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	l := u.m[id]
	if l == nil {
		if u.m == nil {
			u.m = map[int64]*rate.Limiter{}
		}
		l = rate.NewLimiter(UpdateRate, UpdateBurst)
		u.m[id] = l
	}
	return l.Allow()
}

// forget drops node id's bucket (the node is gone).
func (u *updateLimits) forget(id int64) {
	u.mu.Lock()
	delete(u.m, id)
	u.mu.Unlock()
}
