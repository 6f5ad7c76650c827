package control

import (
	"sync"
	"time"

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

// nodeLimits holds a token bucket per node, of rate tokens a second and burst; the zero
// value's are those of host-info updates.
type nodeLimits struct {
	rate  rate.Limit
	burst int

	mu sync.Mutex
	m  map[int64]*rate.Limiter
}

// allow takes a token of node id's bucket.
func (u *nodeLimits) allow(id int64) bool {
	n, _ := u.take(id, 1, time.Now())
	return n == 1
}

// take takes up to n tokens of node id's bucket at now and returns how many it took and,
// when fewer than n, how long until the next one.
func (u *nodeLimits) take(id int64, n int, now time.Time) (int, time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	l := u.m[id]
	if l == nil {
		if u.m == nil {
			u.m = map[int64]*rate.Limiter{}
		}
		r, b := u.rate, u.burst
		if r == 0 {
			r, b = UpdateRate, UpdateBurst
		}
		l = rate.NewLimiter(r, b)
		u.m[id] = l
	}
	got := min(n, int(l.TokensAt(now)))
	if got > 0 {
		l.AllowN(now, got)
	}
	if got == n {
		return got, 0
	}
	return got, time.Duration(float64(time.Second) / float64(l.Limit()))
}

// forget drops node id's bucket (the node is gone).
func (u *nodeLimits) forget(id int64) {
	u.mu.Lock()
	delete(u.m, id)
	u.mu.Unlock()
}
