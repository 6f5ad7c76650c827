package node

import "time"

// mapFreshness is whether the node's map is current: while the map stream with control is
// up (control pushes every change and a keep-alive every 50 s), it is; once the stream is
// lost, the map is as old as the loss.
type mapFreshness struct {
	streamUp bool
	lostAt   time.Time
}

// mapStreamLost records that the map stream ended.
func (n *Node) mapStreamLost() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fresh.streamUp {
		n.fresh.streamUp, n.fresh.lostAt = false, time.Now()
	}
}

// MapCurrentAsOf returns when the network map was last known to be current: now while the
// map stream with control is up, else when it was lost. ok is false before the first map.
func (n *Node) MapCurrentAsOf() (t time.Time, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.nm == nil:
		return time.Time{}, false
	case n.fresh.streamUp:
		return time.Now(), true
	}
	return n.fresh.lostAt, true
}
