package agent

import (
	"context"
	"fmt"
	"time"
)

// An agent that cannot reach control keeps deciding SSH logins under the last network
// map it got: a control outage must not lock admins out of their machines. The price is
// that revocations made meanwhile do not reach it; Config.MaxMapAge (tsconnect up
// --max-map-age) bounds that: past it, new logins are refused until a fresh map arrives.
// Either way the agent logs loudly while its map is stale.

const (
	// staleAfter is how long the map stream may be down before the agent warns.
	staleAfter = 30 * time.Second
	// staleLogEvery is how often the warning repeats while the map stays stale.
	staleLogEvery = time.Minute
)

// mapAge returns how old the map is (0 while the map stream with control is up); ok is
// false before the first map.
func (a *Agent) mapAge() (time.Duration, bool) {
	var asOf time.Time
	var ok bool
	if a.mapAsOf != nil {
		asOf, ok = a.mapAsOf()
	} else {
		asOf, ok = a.node.MapCurrentAsOf()
	}
	if !ok {
		return 0, false
	}
	return max(a.clock().Sub(asOf), 0), true
}

// checkMapAge refuses new logins when Config.MaxMapAge is set and the map is older.
func (a *Agent) checkMapAge() error {
	if a.cfg.MaxMapAge <= 0 {
		return nil
	}
	if age, ok := a.mapAge(); ok && age > a.cfg.MaxMapAge {
		return fmt.Errorf("tsconnect: this machine has had no fresh network map from control for %v, more than its --max-map-age %v: new SSH logins are refused until control is reachable again",
			age.Round(time.Second), a.cfg.MaxMapAge)
	}
	return nil
}

// watchMapAge logs a warning every staleLogEvery while the map is stale, until ctx ends.
func (a *Agent) watchMapAge(ctx context.Context) {
	t := time.NewTicker(staleLogEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if msg := a.staleWarning(); msg != "" {
			a.logf("%s", msg)
		}
	}
}

// staleWarning is the warning for a stale map, "" when the map is fresh.
func (a *Agent) staleWarning() string {
	age, ok := a.mapAge()
	if !ok || age < staleAfter {
		return ""
	}
	what := "SSH logins are still decided under it (revocations made since do not apply here)"
	if a.cfg.MaxMapAge > 0 {
		what = fmt.Sprintf("new SSH logins are refused once it is older than --max-map-age %v", a.cfg.MaxMapAge)
		if age > a.cfg.MaxMapAge {
			what = fmt.Sprintf("it is older than --max-map-age %v, so new SSH logins are refused", a.cfg.MaxMapAge)
		}
	}
	return fmt.Sprintf("agent: WARNING: no fresh network map from control for %v; %s", age.Round(time.Second), what)
}
