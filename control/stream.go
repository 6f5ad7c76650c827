package control

import (
	"cmp"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"tsconnect/controlws"
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
		if err := st.send(&controlws.Envelope{V: controlws.Version, Type: controlws.TypeMapResponse, ID: st.reqID, Body: body}); err != nil {
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
	full, self, dirty := st.full, st.selfDirty, st.dirty
	st.full, st.selfDirty = false, false
	if len(dirty) > 0 {
		st.dirty = map[int64]struct{}{}
	}
	st.mu.Unlock()
	s := st.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	if full {
		return &controlws.MapResponse{Full: s.fullMapLocked(st.nodeID)}
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
		if !ok || ln.loggedOut || id == st.nodeID {
			r.PeersRemoved = append(r.PeersRemoved, id)
			continue
		}
		r.PeersChanged = append(r.PeersChanged, s.nodeView(ln))
		if u := ln.n.User; u != 0 && !seenUser[u] {
			seenUser[u] = true
			if p, ok := s.users[u]; ok {
				r.Users = append(r.Users, p)
			}
		}
	}
	return &r
}

// fullMapLocked builds the whole map for node id. Callers hold s.mu (read).
func (s *Server) fullMapLocked(id int64) *controlws.NetworkMap {
	nm := &controlws.NetworkMap{DERPMap: s.derpMap, Domain: s.cfg.Domain, Peers: make([]controlws.Node, 0, len(s.nodes))}
	users := map[int64]bool{}
	if ln, ok := s.nodes[id]; ok {
		nm.Self = s.nodeView(ln)
		users[ln.n.User] = true
	}
	for pid, ln := range s.nodes {
		if pid == id || ln.loggedOut {
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
