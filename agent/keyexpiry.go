package agent

import (
	"context"
	"fmt"
	"time"

	"tsconnect/controlws"
)

// Node keys expire (control.DefaultNodeKeyExpiry after each authentication, unless an admin
// disabled it) and the expiry travels in the map. The agent refuses a peer past its expiry
// by its own clock, so an expired node is refused even while control is unreachable: new
// logins from it are refused and its open sessions are cut when the time comes (a timer
// armed from the map, not a poll). For its own key it warns ahead of the expiry.

// KeyExpiryWarning is how long before its own key expires the agent starts warning.
const KeyExpiryWarning = 7 * 24 * time.Hour

// keyWarnEvery is how often the warning about its own key repeats in the log.
const keyWarnEvery = time.Hour

// clock is the agent's time (a.now in tests).
func (a *Agent) clock() time.Time {
	if a.now != nil {
		return a.now()
	}
	return time.Now()
}

// expiredPeer is the refusal of a login from p when its key expired at now; nil otherwise.
func expiredPeer(p controlws.Node, now time.Time) error {
	if !p.KeyExpired(now) {
		return nil
	}
	return fmt.Errorf("tsconnect: the node key of %s expired at %s: it must re-authenticate (tsconnect login)",
		p.Name, p.KeyExpiry.UTC().Format(time.RFC3339))
}

// armPeerExpiry sets the timer that re-evaluates the open sessions under nm when the
// soonest peer key of nm expires.
func (a *Agent) armPeerExpiry(nm *controlws.NetworkMap) {
	now := a.clock()
	var soonest time.Time
	var peers []controlws.Node
	if nm != nil {
		peers = nm.Peers
	}
	for _, p := range peers {
		if !p.KeyExpiry.IsZero() && p.KeyExpiry.After(now) && (soonest.IsZero() || p.KeyExpiry.Before(soonest)) {
			soonest = p.KeyExpiry
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.expiryTimer != nil {
		a.expiryTimer.Stop()
		a.expiryTimer = nil
	}
	if soonest.IsZero() {
		return
	}
	a.expiryTimer = time.AfterFunc(soonest.Sub(now), func() {
		if cur := a.netMap(); cur != nil {
			a.revokeSessions(cur)
			a.armPeerExpiry(cur)
		}
	})
}

// KeyWarning is the warning about this node's own key, "" when none is due: within
// KeyExpiryWarning of its expiry, or past it.
func (a *Agent) KeyWarning() string {
	nm := a.netMap()
	if nm == nil || nm.Self.KeyExpiry.IsZero() {
		return ""
	}
	left := nm.Self.KeyExpiry.Sub(a.clock())
	at := nm.Self.KeyExpiry.UTC().Format(time.RFC3339)
	switch {
	case left <= 0:
		return fmt.Sprintf("this node's key expired at %s: peers refuse it until it re-authenticates (tsconnect login)", at)
	case left <= KeyExpiryWarning:
		return fmt.Sprintf("this node's key expires in %v (at %s): re-authenticate before then (tsconnect login)", left.Round(time.Second), at)
	}
	return ""
}

// watchKeyExpiry logs KeyWarning at start and every keyWarnEvery while it applies, and at
// the moment the key expires, until ctx ends.
func (a *Agent) watchKeyExpiry(ctx context.Context) {
	last := ""
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		msg := a.KeyWarning()
		if msg != "" && msg != last {
			a.logf("agent: %s", msg)
		}
		last = msg
		next := keyWarnEvery
		if nm := a.netMap(); nm != nil && !nm.Self.KeyExpiry.IsZero() {
			if left := nm.Self.KeyExpiry.Sub(a.clock()); left > 0 && left < next {
				next = left // log the expiry itself when it comes
			}
		}
		t.Reset(next)
	}
}
