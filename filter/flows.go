package filter

import (
	"net/netip"
	"slices"
	"time"
)

// Bounds of the flow table: at most maxFlows flows in all and maxFlowsPerPeer with any one
// remote address. A peer at its bound loses its own soonest-expiring flows; a full table
// loses flows of the peer that has the most, so one peer's flood (UDP replies to many
// source ports, say) never pushes out another peer's connections.
const (
	maxFlows        = 8192
	maxFlowsPerPeer = 1024
)

// flowTable is the set of tracked flows, grouped by remote address.
type flowTable struct {
	byPeer map[netip.Addr]map[flow]time.Time // remote → flow → when it expires
	n      int
}

func newFlowTable() *flowTable { return &flowTable{byPeer: map[netip.Addr]map[flow]time.Time{}} }

func (t *flowTable) len() int { return t.n }

func (t *flowTable) get(f flow) (time.Time, bool) {
	exp, ok := t.byPeer[f.remote][f]
	return exp, ok
}

func (t *flowTable) delete(f flow) {
	m := t.byPeer[f.remote]
	if _, ok := m[f]; !ok {
		return
	}
	delete(m, f)
	t.n--
	if len(m) == 0 {
		delete(t.byPeer, f.remote)
	}
}

// refresh moves a known flow's expiry; it opens nothing.
func (t *flowTable) refresh(f flow, exp time.Time) {
	if m := t.byPeer[f.remote]; m != nil {
		if _, ok := m[f]; ok {
			m[f] = exp
		}
	}
}

// put records f until exp, evicting within the bounds first when f is new.
func (t *flowTable) put(f flow, exp, now time.Time) {
	m := t.byPeer[f.remote]
	if _, ok := m[f]; ok {
		m[f] = exp
		return
	}
	if len(m) >= maxFlowsPerPeer {
		t.shrink(f.remote, now, maxFlowsPerPeer*3/4)
	}
	if t.n >= maxFlows {
		for r := range t.byPeer {
			t.shrink(r, now, len(t.byPeer[r])) // expired ones only
		}
	}
	if t.n >= maxFlows {
		l := t.largest()
		t.shrink(l, now, len(t.byPeer[l])*3/4)
	}
	if m = t.byPeer[f.remote]; m == nil {
		m = map[flow]time.Time{}
		t.byPeer[f.remote] = m
	}
	m[f] = exp
	t.n++
}

// largest returns the remote with the most flows.
func (t *flowTable) largest() netip.Addr {
	var best netip.Addr
	most := -1
	for r, m := range t.byPeer {
		if len(m) > most {
			best, most = r, len(m)
		}
	}
	return best
}

// shrink drops remote's expired flows, then its soonest-expiring ones until at most keep
// remain.
func (t *flowTable) shrink(remote netip.Addr, now time.Time, keep int) {
	m := t.byPeer[remote]
	for f, exp := range m {
		if now.After(exp) {
			t.delete(f)
		}
	}
	m = t.byPeer[remote]
	if len(m) <= keep {
		return
	}
	fs := make([]flow, 0, len(m))
	for f := range m {
		fs = append(fs, f)
	}
	slices.SortFunc(fs, func(a, b flow) int { return m[a].Compare(m[b]) })
	for _, f := range fs[:len(fs)-keep] {
		t.delete(f)
	}
}
