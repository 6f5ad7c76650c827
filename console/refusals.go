package console

import (
	"fmt"
	"sync"
	"time"
)

// Refused login attempts (rate limited, busy) are coalesced in the audit log: the first
// refusal of a key (account and client address) in refusalWindow is written, the others are
// counted and that count goes into the next row written for the key. A flood of refusals
// writes a row per key per window, not per request.
const (
	refusalWindow  = time.Minute
	maxRefusalKeys = 10000
)

type refusalLog struct {
	mu sync.Mutex
	m  map[string]*refusalCount
}

type refusalCount struct {
	since  time.Time // the last row written
	hidden int       // refusals since then not written
}

// note counts a refusal of key and says whether to write a row now; when it does, suffix
// tells of the refusals left out since the last row ("" when none).
func (rl *refusalLog) note(key string) (write bool, suffix string) {
	now := time.Now()
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if rl.m == nil {
		rl.m = map[string]*refusalCount{}
	}
	rc := rl.m[key]
	if rc != nil && now.Sub(rc.since) < refusalWindow {
		rc.hidden++
		return false, ""
	}
	if rc != nil && rc.hidden > 0 {
		suffix = fmt.Sprintf(" (and %d more refused since %s, not logged one by one)", rc.hidden, rc.since.UTC().Format(time.RFC3339))
	}
	if rc == nil && len(rl.m) >= maxRefusalKeys {
		for k, v := range rl.m {
			if now.Sub(v.since) >= refusalWindow || len(rl.m) >= maxRefusalKeys {
				delete(rl.m, k)
			}
		}
	}
	rl.m[key] = &refusalCount{since: now}
	return true, suffix
}
