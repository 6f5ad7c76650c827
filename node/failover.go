package node

import (
	"context"
	"time"

	"tsconnect/derpws"
	"tsconnect/internal/backoff"
)

// Region failover: a node whose home relay stays unreachable for failoverAfter moves home to
// the best other region of the DERP map that answers its probe within failoverProbe, and
// reports it to control, so that peers' maps follow. Moves are 5-10 s apart (failoverHold,
// jittered), and 30-60 s after a move (failoverRepick, jittered) the node measures every region
// again and goes to the fastest, which is the old home once it is back and still the fastest.
const (
	failoverCheck  = 200 * time.Millisecond
	failoverAfter  = 2 * time.Second
	failoverProbe  = 2 * time.Second
	failoverHold   = 10 * time.Second
	failoverRepick = 60 * time.Second
	failoverRetry  = 2 * time.Second // nothing else answers: probe again in 1-2 s
)

// watchHome runs the failover rule until the node closes.
func (n *Node) watchHome() {
	t := time.NewTicker(failoverCheck)
	defer t.Stop()
	var downSince, nextMove, repickAt time.Time
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		n.mu.Lock()
		relay, dm := n.relay, (*derpws.Map)(nil)
		if n.nm != nil {
			dm = n.nm.DERPMap
		}
		n.mu.Unlock()
		if relay == nil || dm == nil || len(dm.Regions) < 2 {
			continue
		}
		if relay.HomeUp() {
			downSince = time.Time{}
			if !repickAt.IsZero() && now.After(repickAt) && now.After(nextMove) {
				repickAt = time.Time{}
				if n.pickHome(dm) {
					nextMove = time.Now().Add(backoff.Jitter(failoverHold))
				}
			}
			continue
		}
		if downSince.IsZero() {
			downSince = now
		}
		if now.Sub(downSince) < failoverAfter || now.Before(nextMove) {
			continue
		}
		home := relay.Home()
		others := &derpws.Map{Regions: map[int]*derpws.Region{}}
		for id, r := range dm.Regions {
			if id != home {
				others.Regions[id] = r
			}
		}
		ctx, cancel := context.WithTimeout(n.ctx, failoverProbe)
		lat := derpws.ProbeRegions(ctx, others, n.opts.HTTPGet)
		cancel()
		if len(lat) == 0 {
			nextMove = time.Now().Add(backoff.Jitter(failoverRetry)) // nothing answers: look again soon
			continue
		}
		best := derpws.PickHome(others, lat)
		n.logf("node: home relay region %d unreachable for %v; moving home to region %d (%v)", home, now.Sub(downSince).Round(time.Millisecond), best, lat[best])
		n.setHome(best)
		downSince = time.Time{}
		nextMove = time.Now().Add(backoff.Jitter(failoverHold))
		repickAt = time.Now().Add(backoff.Jitter(failoverRepick))
	}
}
