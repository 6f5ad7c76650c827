package console

import (
	"sync"
	"time"
)

// Login rate limits: failures counted over a sliding window.
const (
	loginWindow         = 10 * time.Minute
	maxFailuresPerEmail = 5
	maxFailuresPerAddr  = 20
	maxLimiterKeys      = 10000 // bounds memory under a flood of distinct keys
)

// limiter counts recent failures per key (an email or a client address).
type limiter struct {
	window time.Duration
	max    int
	now    func() time.Time

	mu    sync.Mutex
	fails map[string][]time.Time // oldest first
}

func newLimiter(window time.Duration, max int) *limiter {
	return &limiter{window: window, max: max, now: time.Now, fails: map[string][]time.Time{}}
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

// blocked returns how long key must wait before its next attempt; 0: it may try now.
func (l *limiter) blocked(key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	fs := l.recent(key, now)
	if len(fs) < l.max {
		return 0
	}
	// The attempt becomes possible when enough failures have left the window.
	return fs[len(fs)-l.max].Add(l.window).Sub(now)
}

// fail records a failure of key.
func (l *limiter) fail(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.fails) >= maxLimiterKeys {
		for k := range l.fails {
			l.recent(k, now)
		}
		for k := range l.fails { // still full: forget arbitrary keys
			if len(l.fails) < maxLimiterKeys {
				break
			}
			delete(l.fails, k)
		}
	}
	l.fails[key] = append(l.recent(key, now), now)
}

// reset forgets key's failures (after a successful login).
func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, key)
}
