package control

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"tsconnect/controlws"
	"tsconnect/policy/rules"
)

// mailboxLimit bounds a stream's pending deltas: past this many changed peers it is
// cheaper (and bounded) to send one new full map instead.
const mailboxLimit = 512

// keepAliveEvery is how often an idle stream gets a KeepAlive message.
const keepAliveEvery = 50 * time.Second

// stream is one node's map stream. Changes are recorded as "peer ID is dirty" and turned
// into entries when sent, so pending work is bounded by the number of peers and a slow
// client only ever delays itself.
type stream struct {
	s      *Server
	nodeID int64
	reqID  uint64
	send   func(*controlws.Envelope) error

	mu        sync.Mutex
	full      bool               // next message is a full map
	selfDirty bool               // own entry changed
	dirty     map[int64]struct{} // peers changed or removed
	wake      chan struct{}      // capacity 1

	// What the client was last sent, used by take only: the rules' generation and
	// encoding, and the peers in its map.
	sentGen   uint64
	sentRules []byte
	sentPeers map[int64]bool
}

func newStream(s *Server, nodeID int64, reqID uint64, send func(*controlws.Envelope) error) *stream {
	st := &stream{s: s, nodeID: nodeID, reqID: reqID, send: send, full: true,
		dirty: map[int64]struct{}{}, wake: make(chan struct{}, 1)}
	st.wake <- struct{}{}
	return st
}

// markPeer records that peer id changed or went away.
func (st *stream) markPeer(id int64) {
	st.mu.Lock()
	if !st.full {
		st.dirty[id] = struct{}{}
		if len(st.dirty) > mailboxLimit {
			st.full, st.dirty = true, map[int64]struct{}{}
		}
	}
	st.mu.Unlock()
	st.poke()
}

// markFull records that the next message must be a full map (rules changed).
func (st *stream) markFull() {
	st.mu.Lock()
	st.full, st.dirty = true, map[int64]struct{}{}
	st.mu.Unlock()
	st.poke()
}

// markSelf records that the node's own entry changed.
func (st *stream) markSelf() {
	st.mu.Lock()
	st.selfDirty = true
	st.mu.Unlock()
	st.poke()
}

func (st *stream) poke() {
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

// run sends map responses until done is closed or a send fails, which it returns.
func (st *stream) run(done <-chan struct{}) error {
	t := time.NewTicker(keepAliveEvery)
	defer t.Stop()
	for {
		var resp *controlws.MapResponse
		select {
		case <-done:
			return nil
		case <-st.wake:
			resp = st.take()
		case <-t.C:
			resp = &controlws.MapResponse{KeepAlive: true}
		}
		if resp == nil {
			continue
		}
		body, err := json.Marshal(resp)
		if err != nil {
			return err
		}
		if len(body) > controlws.MaxEnvelopeSize-1024 {
			// Only past ~1,000 peers all at the host-info caps (controlws.MaxNodeJSON): say so
			// loudly, since the node cannot get a map until the network shrinks.
			st.s.logf("control: node %d: its map is %d bytes, over the %d-byte envelope limit: it gets no map", st.nodeID, len(body), controlws.MaxEnvelopeSize)
			return fmt.Errorf("map of %d bytes over the envelope limit", len(body))
		}
		// V stays 0: the connection stamps the version it negotiated.
		if err := st.send(&controlws.Envelope{Type: controlws.TypeMapResponse, ID: st.reqID, Body: body}); err != nil {
			return err
		}
		t.Reset(keepAliveEvery)
	}
}

// take turns the pending changes into one message, or nil when there are none.
// The state is read after the marks are cleared, so a change racing with take is either
// in this message or marked again for the next: deltas carry whole entries and are idempotent.
func (st *stream) take() *controlws.MapResponse {
	st.mu.Lock()
	full, self := st.full, st.selfDirty
	st.full, st.selfDirty = false, false
	// Take the set only when it holds something: an empty one stays st's, and the local
	// is nil, never an alias that markPeer writes into while this ranges over it.
	var dirty map[int64]struct{}
	if len(st.dirty) > 0 {
		dirty, st.dirty = st.dirty, map[int64]struct{}{}
	}
	st.mu.Unlock()
	s := st.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.compiledLocked()
	if !full && c.gen != st.sentGen {
		// The network or the policy changed: the node's rules or the set of peers it may
		// see may have too, and those travel only in full maps.
		if st.sameView(c) {
			st.sentGen = c.gen
		} else {
			full = true
		}
	}
	if full {
		nm := s.fullMapLocked(st.nodeID, c)
		st.sentGen, st.sentRules = c.gen, rulesKey(nm)
		st.sentPeers = make(map[int64]bool, len(nm.Peers))
		for _, p := range nm.Peers {
			st.sentPeers[p.ID] = true
		}
		return &controlws.MapResponse{Full: nm}
	}
	if !self && len(dirty) == 0 {
		return nil
	}
	var r controlws.MapResponse
	if self {
		if ln, ok := s.nodes[st.nodeID]; ok {
			n := s.nodeView(ln)
			r.Self = &n
		}
	}
	seenUser := map[int64]bool{}
	for id := range dirty {
		ln, ok := s.nodes[id]
		if !ok || ln.loggedOut || id == st.nodeID || !c.visible(st.nodeID, id) {
			if st.sentPeers[id] {
				r.PeersRemoved = append(r.PeersRemoved, id)
				delete(st.sentPeers, id)
			}
			continue
		}
		st.sentPeers[id] = true
		r.PeersChanged = append(r.PeersChanged, s.nodeView(ln))
		if u := ln.n.User; u != 0 && !seenUser[u] {
			seenUser[u] = true
			if p, ok := s.users[u]; ok {
				r.Users = append(r.Users, p)
			}
		}
	}
	if r.Self == nil && len(r.PeersChanged) == 0 && len(r.PeersRemoved) == 0 {
		return nil
	}
	return &r
}

// sameView reports whether c gives the stream's node the rules and peers it was last sent.
// Callers hold s.mu (read).
func (st *stream) sameView(c *compiled) bool {
	s := st.s
	n := 0
	for id, ln := range s.nodes {
		if id == st.nodeID || ln.loggedOut || !c.visible(st.nodeID, id) {
			continue
		}
		if !st.sentPeers[id] {
			return false
		}
		n++
	}
	if n != len(st.sentPeers) {
		return false
	}
	return string(rulesKey(&controlws.NetworkMap{PacketFilter: filterOf(c, st.nodeID), SSHRules: sshOf(c, st.nodeID)})) == string(st.sentRules)
}

// rulesKey encodes the rules part of nm, to compare what was sent with what is due.
func rulesKey(nm *controlws.NetworkMap) []byte {
	b, _ := json.Marshal(struct {
		F *rules.Filter
		S []rules.SSHRule
	}{nm.PacketFilter, nm.SSHRules})
	return b
}

// filterOf is node id's packet filter; never nil, so the node filters (an empty filter
// admits nothing).
func filterOf(c *compiled, id int64) *rules.Filter {
	f := rules.Filter{}
	if nr := c.rules[id]; nr != nil && nr.Filter != nil {
		f = nr.Filter
	}
	return &f
}

func sshOf(c *compiled, id int64) []rules.SSHRule {
	if nr := c.rules[id]; nr != nil {
		return nr.SSH
	}
	return nil
}

// fullMapLocked builds the whole map for node id: itself, the peers it may talk to in
// either direction, and its own rules. Callers hold s.mu (read).
func (s *Server) fullMapLocked(id int64, c *compiled) *controlws.NetworkMap {
	nm := &controlws.NetworkMap{DERPMap: s.derpMap, Domain: s.cfg.Domain, Peers: make([]controlws.Node, 0, len(c.inbound[id])),
		PacketFilter: filterOf(c, id), SSHRules: sshOf(c, id)}
	users := map[int64]bool{}
	if ln, ok := s.nodes[id]; ok {
		nm.Self = s.nodeView(ln)
		users[ln.n.User] = true
	}
	for pid, ln := range s.nodes {
		if pid == id || ln.loggedOut || !c.visible(id, pid) {
			continue
		}
		nm.Peers = append(nm.Peers, s.nodeView(ln))
		users[ln.n.User] = true
	}
	slices.SortFunc(nm.Peers, func(a, b controlws.Node) int { return cmp.Compare(a.ID, b.ID) })
	for uid := range users {
		if p, ok := s.users[uid]; ok {
			nm.Users = append(nm.Users, p)
		}
	}
	return nm
}

// publishChanged tells every stream that node id changed (its own streams: Self).
// Callers hold writeMu, and have updated the cache.
func (s *Server) publishChanged(id int64) {
	defer s.changes.notify()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for nid, sts := range s.streams {
		for st := range sts {
			if nid == id {
				st.markSelf()
			} else {
				st.markPeer(id)
			}
		}
	}
}

// publishRemoved tells every stream that node id is gone.
func (s *Server) publishRemoved(id int64) {
	defer s.changes.notify()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for nid, sts := range s.streams {
		if nid == id {
			continue
		}
		for st := range sts {
			st.markPeer(id)
		}
	}
}
