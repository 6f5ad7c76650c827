package console

import (
	"context"
	"sync"
	"time"

	"tsconnect/control"
)

// Login rate limits: failures counted over a sliding window. An attempt is reserved (counted
// as a failure) before its password is hashed and given back only if it succeeds or was
// never checked, so parallel guesses cannot pass the limit; an over-limit attempt is
// answered 429 at once. Real accounts are counted by user id in a table that never drops
// keys, so a flood of made-up emails (counted in a bounded table of their own) cannot reset
// a real account's count; client addresses (IPv6 per /64) are counted in another bounded table.
const (
	loginWindow         = 10 * time.Minute
	maxFailuresPerEmail = 5
	maxFailuresPerAddr  = 20
	maxLimiterKeys      = 10000 // bounds the tables of made-up emails and of addresses
	maxHashesPerAddr    = 2     // password checks of one client address in progress at once
)

// limiter counts recent failures per key (a user, an email or a client address), in
// memory, or in the store when control runs as replicas (shared), so that the limits hold
// whichever replica an attempt reaches.
type limiter struct {
	window  time.Duration
	max     int
	maxKeys int // 0: no bound (the table of real users, bounded by the store)
	now     func() time.Time
	shared  *sharedLimit // nil: in memory

	mu    sync.Mutex
	fails map[string][]time.Time // oldest first
}

func newLimiter(window time.Duration, max, maxKeys int) *limiter {
	return &limiter{window: window, max: max, maxKeys: maxKeys, now: time.Now, fails: map[string][]time.Time{}}
}

// recent drops key's failures older than the window and returns the rest. Callers hold mu.
func (l *limiter) recent(key string, now time.Time) []time.Time {
	fs := l.fails[key]
	i := 0
	for i < len(fs) && now.Sub(fs[i]) >= l.window {
		i++
	}
	fs = fs[i:]
	if len(fs) == 0 {
		delete(l.fails, key)
	} else {
		l.fails[key] = fs
	}
	return fs
}

// sharedLimit is a limiter's table in the store (control.Server.ReserveFailure).
type sharedLimit struct {
	srv   *control.Server
	scope string
	logf  func(string, ...any)
}

// reserve counts an attempt of key as a failure now and returns 0, or, when key is at its
// limit, counts nothing and returns how long it must wait. A store that fails refuses the
// attempt (for a second).
func (l *limiter) reserve(key string) time.Duration {
	if sh := l.shared; sh != nil {
		wait, err := sh.srv.ReserveFailure(context.Background(), sh.scope, key, l.window, l.max, l.maxKeys)
		if err != nil {
			sh.logf("console: login rate limit %s: %v", sh.scope, err)
			return time.Second
		}
		return wait
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	fs := l.recent(key, now)
	if len(fs) >= l.max {
		// The attempt becomes possible when enough failures have left the window.
		return max(fs[len(fs)-l.max].Add(l.window).Sub(now), time.Second)
	}
	if l.maxKeys > 0 && len(fs) == 0 && len(l.fails) >= l.maxKeys {
		for k := range l.fails {
			l.recent(k, now)
		}
		for k := range l.fails { // still full: forget a tenth, arbitrary keys of this table
			if len(l.fails) < l.maxKeys*9/10 {
				break
			}
			delete(l.fails, k)
		}
	}
	l.fails[key] = append(fs, now)
	return 0
}

// release takes back key's latest reservation (an attempt that succeeded or was not checked).
func (l *limiter) release(key string) {
	if sh := l.shared; sh != nil {
		if err := sh.srv.ReleaseFailure(context.Background(), sh.scope, key); err != nil {
			sh.logf("console: login rate limit %s: %v", sh.scope, err) // the failure stays counted
		}
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fs := l.fails[key]
	if len(fs) <= 1 {
		delete(l.fails, key)
		return
	}
	l.fails[key] = fs[:len(fs)-1]
}

// reset forgets key's failures (after a successful login).
func (l *limiter) reset(key string) {
	if sh := l.shared; sh != nil {
		if err := sh.srv.ResetFailures(context.Background(), sh.scope, key); err != nil {
			sh.logf("console: login rate limit %s: %v", sh.scope, err)
		}
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, key)
}

// inFlight counts password checks in progress per client address.
type inFlight struct {
	mu sync.Mutex
	n  map[string]int
}

// acquire takes one of key's maxHashesPerAddr slots; false when they are all taken.
func (f *inFlight) acquire(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == nil {
		f.n = map[string]int{}
	}
	if f.n[key] >= maxHashesPerAddr {
		return false
	}
	f.n[key]++
	return true
}

func (f *inFlight) release(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n[key]--; f.n[key] <= 0 {
		delete(f.n, key)
	}
}
