package node

import (
	"context"
	"time"

	"tsconnect/controlws"
	"tsconnect/internal/backoff"
)

// How a node redials control after losing it. The first retry after a working stream goes
// at once; then the delay doubles from ReconnectMin and stays at most ReconnectMax, each
// delay jittered to [d/2, d]. So while control is down a node tries again at least every
// ReconnectMax, and is back within ReconnectMax (plus one handshake) of control coming back.
//
// Why the bound is safe for control with many nodes: each node has at most one dial in
// flight (a slow control gets fewer tries, not more), and the jitter spreads the nodes
// that lost control at the same moment over the half-interval, so 10,000 nodes arrive
// at control as about 10,000 / ReconnectMax per second for one interval, not at once.
// While control is down their tries cost a refused TCP connection (or a 503 from a proxy
// in front). See docs/architecture.md, "Outages".
const (
	// ReconnectMin is the first backoff step after a failed try.
	ReconnectMin = 100 * time.Millisecond
	// ReconnectMax bounds the time between tries while control stays unreachable.
	ReconnectMax = 1500 * time.Millisecond
	// unreachableLogEvery spaces out the "still unreachable" log lines of a long outage.
	unreachableLogEvery = 30 * time.Second
)

// redial waits delay, then dials control until it answers: each failed dial moves to the
// next URL of the ring (controlurls.go) at once, and a round of them that all failed waits
// retry.Next(). It returns nil once ctx is done.
func (n *Node) redial(ctx context.Context, retry *backoff.Backoff, delay time.Duration) *controlws.Client {
	var since, logged time.Time
	fails := 0
	for {
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil
			}
		} else if ctx.Err() != nil {
			return nil
		}
		cc, err := n.dialControl(ctx)
		if err == nil {
			if !since.IsZero() {
				n.logf("node: control reachable again after %v", time.Since(since).Round(time.Millisecond))
			}
			return cc
		}
		if ctx.Err() != nil {
			return nil
		}
		now := time.Now()
		if since.IsZero() {
			since = now
		}
		if logged.IsZero() || now.Sub(logged) >= unreachableLogEvery {
			n.logf("node: control unreachable for %v (retrying at least every %v): %v", now.Sub(since).Round(time.Second), ReconnectMax, err)
			logged = now
		}
		delay = 0
		if fails++; fails%n.nextControlTarget() == 0 {
			delay = retry.Next()
		}
	}
}

// dialRound dials the URLs of the ring in turn, from the next one, until one answers or each
// failed once; then it returns the first failure.
func (n *Node) dialRound(ctx context.Context) (*controlws.Client, error) {
	var first error
	for fails := 1; ; fails++ {
		cc, err := n.dialControl(ctx)
		if err == nil {
			return cc, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil || fails >= n.nextControlTarget() {
			return nil, first
		}
	}
}
