package control

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"tsconnect/control/store"
)

// DefaultNodeKeyExpiry is the network's node-key lifetime until an admin sets another: a node
// re-authenticates (tsconnect login) within it or its key expires.
const DefaultNodeKeyExpiry = 180 * 24 * time.Hour

// MinNodeKeyExpiry and MaxNodeKeyExpiry bound the network's node-key lifetime.
const (
	MinNodeKeyExpiry = 5 * time.Second
	MaxNodeKeyExpiry = 10 * 365 * 24 * time.Hour
)

// keyExpiredAt reports whether n's key has expired at now (never when expiry is disabled).
func keyExpiredAt(n store.Node, now time.Time) bool {
	return !n.KeyExpiryDisabled && !n.KeyExpiry.IsZero() && !now.Before(n.KeyExpiry)
}

// loadKeyExpiry returns the network's node-key lifetime.
func loadKeyExpiry(tx store.Tx) (time.Duration, error) {
	v, err := tx.Setting(settingKeyExpiry)
	if errors.Is(err, store.ErrNotFound) {
		return DefaultNodeKeyExpiry, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || time.Duration(n) < MinNodeKeyExpiry || time.Duration(n) > MaxNodeKeyExpiry {
		return 0, fmt.Errorf("setting %s: %q is not a lifetime in [%v, %v]", settingKeyExpiry, v, MinNodeKeyExpiry, MaxNodeKeyExpiry)
	}
	return time.Duration(n), nil
}

// NodeKeyExpiry returns the network's node-key lifetime: each node's key expires that long
// after the node (re)authenticated, unless an admin disabled expiry for it.
func (s *Server) NodeKeyExpiry(ctx context.Context) (time.Duration, error) {
	var d time.Duration
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		d, err = loadKeyExpiry(tx)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("control: key expiry: %w", err)
	}
	return d, nil
}

// SetNodeKeyExpiry sets the network's node-key lifetime, in [MinNodeKeyExpiry, MaxNodeKeyExpiry]. It
// applies from each node's next authentication; keys issued before keep their expiry.
func (s *Server) SetNodeKeyExpiry(ctx context.Context, d time.Duration) error {
	if d < MinNodeKeyExpiry || d > MaxNodeKeyExpiry {
		return fmt.Errorf("control: key expiry %v: %w: want a lifetime in [%v, %v]", d, ErrInvalid, MinNodeKeyExpiry, MaxNodeKeyExpiry)
	}
	err := s.st.Update(ctx, func(tx store.Tx) error {
		return tx.SetSetting(settingKeyExpiry, strconv.FormatInt(int64(d), 10))
	})
	if err != nil {
		return fmt.Errorf("control: set key expiry: %w", err)
	}
	s.logf("control: node keys now expire %v after authentication", d)
	return nil
}

// SetNodeKeyExpiryDisabled disables (or enables again) the expiry of node id's key. A
// disabled key never expires, so an expired node is back in its peers' maps at once;
// enabling it again keeps the expiry the key had, so a key past it expires now.
func (s *Server) SetNodeKeyExpiryDisabled(ctx context.Context, id int64, disabled bool) (NodeState, error) {
	s.writeMu.Lock()
	var n store.Node
	changed := false
	err := s.st.Update(ctx, func(tx store.Tx) error {
		var err error
		n, err = tx.NodeByID(id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && !n.Deleted.IsZero()) {
			return fmt.Errorf("control: no node %d: %w", id, ErrNotFound)
		}
		if err != nil || n.KeyExpiryDisabled == disabled {
			return err
		}
		n.KeyExpiryDisabled, changed = disabled, true
		return tx.UpdateNode(&n)
	})
	if err != nil {
		s.writeMu.Unlock()
		if errors.Is(err, ErrNotFound) {
			return NodeState{}, err
		}
		return NodeState{}, fmt.Errorf("control: node %d key expiry: %w", id, err)
	}
	if changed {
		s.refreshKeyExpiry(n)
	}
	s.writeMu.Unlock()
	if changed {
		s.logf("control: key expiry of node %d %s disabled=%v", n.ID, n.Name, disabled)
	}
	return s.NodeState(ctx, id)
}

// refreshKeyExpiry caches n anew and tells its peers and itself; an expired key leaves
// the relay too. Callers hold writeMu.
func (s *Server) refreshKeyExpiry(n store.Node) {
	s.mu.Lock()
	s.cacheNode(n)
	s.mu.Unlock()
	s.publishChanged(n.ID)
	if keyExpiredAt(n, s.now()) && s.relay != nil {
		s.relay.ClosePeer(n.NodeKey)
	}
}

// backfillKeyExpiry gives the live nodes that have no key expiry (registered before
// control kept one) a full lifetime from now. Run at start-up.
func backfillKeyExpiry(tx store.Tx, now time.Time) error {
	life, err := loadKeyExpiry(tx)
	if err != nil {
		return err
	}
	nodes, err := tx.Nodes()
	if err != nil {
		return err
	}
	for _, n := range nodes {
		if n.KeyExpiry.IsZero() {
			n.KeyExpiry = now.Add(life)
			if err := tx.UpdateNode(&n); err != nil {
				return err
			}
		}
	}
	return nil
}

// expireDueKeys takes the nodes whose keys reached their expiry out of every map (as
// logged out: out of the compiled rules, so peers get them removed) and out of the relay.
// The expiry timer calls it.
func (s *Server) expireDueKeys() {
	if s.ctx.Err() != nil {
		return
	}
	for _, id := range s.keyTimer.due(s.now()) {
		s.writeMu.Lock()
		var n store.Node
		err := s.st.Read(s.ctx, func(tx store.Tx) error {
			var err error
			n, err = tx.NodeByID(id)
			return err
		})
		if err == nil && n.Deleted.IsZero() && keyExpiredAt(n, s.now()) {
			s.refreshKeyExpiry(n)
			s.logf("control: the key of node %d %s expired at %s", n.ID, n.Name, n.KeyExpiry.Format(time.RFC3339))
		} else if err != nil && !errors.Is(err, store.ErrNotFound) && s.ctx.Err() == nil {
			s.logf("control: node %d key expiry: %v", id, err)
			s.keyTimer.schedule(id, s.now().Add(time.Second), s.now()) // try again
		}
		s.writeMu.Unlock()
	}
}

// keyTimer wakes control when the soonest node key expires: one timer for the whole
// network, over a heap of (expiry, node) entries, never a poll of every node.
type keyTimer struct {
	mu    sync.Mutex
	h     expiryHeap
	at    map[int64]time.Time // node → the expiry scheduled for it
	t     *time.Timer
	fire  func()
	close bool
}

type expiryEntry struct {
	at time.Time
	id int64
}

type expiryHeap []expiryEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// schedule makes the timer fire at at (or soon after) for node id; now is control's clock.
// A node scheduled already for the same time is not added again.
func (k *keyTimer) schedule(id int64, at, now time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.close || k.fire == nil {
		return
	}
	if k.at == nil {
		k.at = map[int64]time.Time{}
	}
	if prev, ok := k.at[id]; ok && prev.Equal(at) {
		return
	}
	k.at[id] = at
	heap.Push(&k.h, expiryEntry{at, id})
	if k.h[0].id == id && k.h[0].at.Equal(at) {
		k.armLocked(now)
	}
}

// armLocked sets the timer for the heap's soonest entry. Callers hold k.mu.
func (k *keyTimer) armLocked(now time.Time) {
	if len(k.h) == 0 || k.close {
		return
	}
	d := k.h[0].at.Sub(now)
	if k.t == nil {
		k.t = time.AfterFunc(d, k.fire)
	} else {
		k.t.Reset(d)
	}
}

// due pops the nodes whose scheduled expiry is at or before now and arms the timer for the
// next. An entry superseded by a later schedule of its node is dropped.
func (k *keyTimer) due(now time.Time) []int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	var ids []int64
	for len(k.h) > 0 && !now.Before(k.h[0].at) {
		e := heap.Pop(&k.h).(expiryEntry)
		if at, ok := k.at[e.id]; ok && at.Equal(e.at) {
			delete(k.at, e.id)
			ids = append(ids, e.id)
		}
	}
	k.armLocked(now)
	return ids
}

// stop stops the timer for good.
func (k *keyTimer) stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.close = true
	if k.t != nil {
		k.t.Stop()
	}
}
