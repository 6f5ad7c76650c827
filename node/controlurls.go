package node

import (
	"slices"

	"tsconnect/controlws"
	"tsconnect/key"
)

// Control failover: besides the URL it was given (Options.ControlURL), a node keeps the
// control replicas its maps list (NetworkMap.ControlURLs, validated and bounded by
// controlws.CheckControlURLs) and the server key they proved; it saves both in its state
// (node.json, under the URL it was given), so a restarted node knows them before its first
// map. When a dial fails, or a stream ends before bringing a map, the next dial goes to the
// next URL of the ring (the given URL, then the listed ones from an offset of the node's
// own, so the nodes of a dead replica spread over the others); only after a whole round
// failed does the node wait (reconnect.go's back-off). Every URL but the given one is
// dialled with the server key pinned: a replica of the same control holds the same key, and
// a map cannot send the node to any other server.

// controlState is what node.json keeps of the control replicas.
type controlState struct {
	// For is the given control URL these were learned under; another one ignores them.
	For string `json:"for"`
	// Key is the control's server key, the one every replica proves.
	Key key.Public `json:"key"`
	// URLs are the replicas' URLs from the latest map (controlws.NetworkMap.ControlURLs).
	URLs []string `json:"urls,omitempty"`
}

// ringLocked returns the URLs to dial in order: the given one, then the learned ones, from
// an offset of this node's own (ringSeed), so that the nodes of a replica that died spread
// over the survivors instead of all dialling the first listed. Callers hold n.mu.
func (n *Node) ringLocked() []string {
	ring := []string{n.opts.ControlURL}
	if c := n.id.Control; c != nil && c.For == n.opts.ControlURL && !c.Key.IsZero() && len(c.URLs) > 0 {
		off := int(n.ringSeed % uint32(len(c.URLs)))
		for i := range c.URLs {
			if u := c.URLs[(off+i)%len(c.URLs)]; !slices.Contains(ring, u) {
				ring = append(ring, u)
			}
		}
	}
	return ring
}

// controlTarget returns the URL the next dial goes to and the server key to pin (zero:
// Options.ControlKey, or fetch it, for the given URL).
func (n *Node) controlTarget() (string, key.Public) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ring := n.ringLocked()
	if !slices.Contains(ring, n.target) {
		n.target = ring[0]
	}
	if n.target == n.opts.ControlURL {
		return n.target, n.opts.ControlKey
	}
	if !n.opts.ControlKey.IsZero() {
		return n.target, n.opts.ControlKey
	}
	return n.target, n.id.Control.Key
}

// nextControlTarget moves the next dial to the URL after the current one in the ring, and
// returns the ring's length: after that many failures in a row, each URL failed once.
func (n *Node) nextControlTarget() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	ring := n.ringLocked()
	next := ring[(slices.Index(ring, n.target)+1)%len(ring)]
	if next != n.target {
		n.logf("node: trying control at %s next", next)
	}
	n.target = next
	return len(ring)
}

// ControlURL returns the URL of the control replica whose map stream is up, "" while none is.
func (n *Node) ControlURL() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.fresh.streamUp {
		return ""
	}
	return n.ccURL
}

// ControlURLs returns the control URLs the node dials in turn, the one it uses now first.
func (n *Node) ControlURLs() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	ring := n.ringLocked()
	if i := slices.Index(ring, n.target); i > 0 {
		ring = append(ring[i:], ring[:i]...)
	}
	return ring
}

// learnControlURLsLocked keeps the replicas a map from server listed, and saves them when they
// changed. A list controlws.CheckControlURLs refuses is logged and ignored. Callers hold n.mu.
func (n *Node) learnControlURLsLocked(urls []string, server key.Public) {
	if server.IsZero() {
		return
	}
	if err := controlws.CheckControlURLs(urls); err != nil {
		if !n.badURLsLogged {
			n.logf("node: ignoring the control URLs of the map: %v", err)
			n.badURLsLogged = true
		}
		return
	}
	n.badURLsLogged = false
	c := &controlState{For: n.opts.ControlURL, Key: server, URLs: slices.Clone(urls)}
	if old := n.id.Control; old != nil && old.For == c.For && old.Key == c.Key && slices.Equal(old.URLs, c.URLs) {
		return
	}
	n.id.Control = c
	if err := n.id.save(n.opts.StateDir); err != nil {
		n.logf("node: saving the control URLs: %v", err)
	}
}
