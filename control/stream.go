package control

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"tsconnect/controlws"
	"tsconnect/policy/rules"
)

// mailboxLimit bounds a stream's pending deltas: past this many changed peers it is
// cheaper (and bounded) to send one new full map instead.
const mailboxLimit = 512

// maxFullMapsAtOnce bounds how many streams build and send a full map at the same time,
// so a policy change or a reconnect storm holds at most this many encoded maps.
const maxFullMapsAtOnce = 4

// coalesceEvery is the shortest time between two messages of a stream: changes that come
// faster are merged into the next message (a burst of joins is one delta, not hundreds).
const coalesceEvery = 100 * time.Millisecond

// keepAliveEvery is how often an idle stream gets a KeepAlive message.
const keepAliveEvery = 50 * time.Second

// keepAliveBody is the encoded keep-alive message.
var keepAliveBody = []byte(`{"keepAlive":true}`)

// stream is one node's map stream. Changes are recorded as "peer ID is dirty" and turned
// into entries when sent, so pending work is bounded by the number of peers and a slow
// client only ever delays itself.
type stream struct {
	s      *Server
	nodeID int64
	reqID  uint64
	send   func(*controlws.Envelope) error
	// rulesDelta: the client applies MapResponse.Rules (protocol version 3 on), so a rules
	// change needs no full map.
	rulesDelta bool
	// filterDelta: the client applies MapResponse.FilterDelta (version 4 on), so a change
	// of its filter's sources alone travels as the addresses that came and went.
	filterDelta bool
	// recording: the client knows session recording (version 5 on): it gets RecordFrom, and
	// enforceRecorder rules as they are, never as refusals (sshFor).
	recording bool
	// recordFromDelta: the client applies MapResponse.RecordFromDelta (version 6 on), so a
	// recorder's RecordFrom changes as the addresses that came and went.
	recordFromDelta bool

	mu        sync.Mutex
	full      bool               // next message is a full map
	selfDirty bool               // own entry changed
	dirty     map[int64]struct{} // peers changed or removed
	wake      chan struct{}      // capacity 1

	// What the client was last sent, used by take only: the generation and the hash of
	// its rules, and the peers in its map.
	sentGen   uint64
	sentKey   uint64
	sentPeers peerSet
	sentAcc   []*srcSet // the source sets of its filter then (never modified)
	sentRules *rules.NodeRules
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

// markFull records that the next message must be a full map.
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

// poke wakes the stream to recheck its rules and peers against the newest compilation.
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
	var last time.Time // when the last message went out
	for {
		var body []byte
		held := false
		select {
		case <-done:
			return nil
		case <-st.wake:
			if wait := coalesceEvery - time.Since(last); wait > 0 {
				select {
				case <-done:
					return nil
				case <-time.After(wait):
				}
			}
			body, held = st.take()
		case <-t.C:
			body = keepAliveBody
		}
		if body == nil {
			continue
		}
		err := st.sendBody(body)
		last = time.Now()
		if held {
			<-st.s.fullMaps
		}
		if err != nil {
			return err
		}
		t.Reset(keepAliveEvery)
	}
}

func (st *stream) sendBody(body []byte) error {
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
	st.s.m.mapSends.Inc()
	st.s.m.mapBytes.Add(float64(len(body)))
	return nil
}

// take turns the pending changes into one encoded message, or nil when there are none;
// held says it holds a slot of s.fullMaps, to give back once the message is sent.
// The state is read after the marks are cleared, so a change racing with take is either
// in this message or marked again for the next: deltas carry whole entries and are idempotent.
func (st *stream) take() (body []byte, held bool) {
	s := st.s
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
	if full {
		s.fullMaps <- struct{}{}
		held = true
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.compiledLocked()
	var recheck []int64
	recheckAll, rulesChanged := false, false
	var diff srcDiff // how its filter's sources changed, when sameShape
	sameShape := false
	if !full && c.gen != st.sentGen {
		// The network or the policy changed: this node's rules, or which peers it sees.
		switch ids, ok := c.changedSince(st.sentGen); {
		case c.keyOrZero(st.nodeID) != st.sentKey && !st.rulesDelta:
			full = true // an old client gets rules in full maps only
		case c.keyOrZero(st.nodeID) != st.sentKey:
			rulesChanged = true
			// Its own filter admits other addresses now: the nodes listed or no longer
			// listed, and those whose rules changed, may have come or gone (all, when
			// a set has wide prefixes or the log is too short). When only sources
			// changed, their difference (which a filter delta carries) names those nodes.
			diff, sameShape = diffSources(st.sentRules, st.sentAcc, c.rulesOf(st.nodeID), c.accOf(st.nodeID))
			switch {
			case !ok:
				recheckAll = true
			case sameShape && diff.narrow:
				recheck = append(ids, s.nodesOf(diff)...)
			default:
				more, narrow := s.accDiffLocked(st.sentAcc, c.accOf(st.nodeID))
				recheck, recheckAll = append(ids, more...), !narrow
			}
		case !ok:
			recheckAll = true
		default:
			recheck = ids
		}
		st.sentGen = c.gen
	}
	id := st.nodeID
	if full {
		st.sentGen, st.sentKey, st.sentAcc, st.sentRules = c.gen, c.keyOrZero(id), c.accOf(id), c.rulesOf(id)
		var peers []int64
		peers, st.sentPeers = s.peerList(c, id)
		return s.fullMapJSON(c, id, peers, st.sshFor(c, id), st.recordFromFor(c, id)), held
	}
	var r controlws.MapResponse
	var rulesJSON []byte // r.Rules, encoded apart (appendRulesJSON)
	if rulesChanged {
		if st.filterDelta && sameShape && diff.sendable(st.recordFromDelta || !st.recording) {
			r.FilterDelta = diff.ds
			if st.recording { // RecordFrom changes only matter to a client that gets it
				r.RecordFromDelta = diff.recordFrom
			}
		} else {
			rulesJSON = appendRulesJSON(nil, c, id, st.sshFor(c, id), st.recordFromFor(c, id))
		}
		st.sentKey, st.sentAcc, st.sentRules = c.keyOrZero(id), c.accOf(id), c.rulesOf(id)
	}
	if self {
		if ln, ok := s.nodes[id]; ok {
			n := s.nodeView(ln)
			r.Self = &n
		}
	}
	seenUser := map[int64]bool{}
	var changed []int64 // r.PeersChanged, written from each node's entry encoded once (nodeJSON)
	add := func(p int64) {
		ln := s.nodes[p]
		st.sentPeers.add(p)
		changed = append(changed, p)
		if u := ln.n.User; u != 0 && !seenUser[u] {
			seenUser[u] = true
			if up, ok := s.users[u]; ok {
				r.Users = append(r.Users, up)
			}
		}
	}
	remove := func(p int64) {
		if st.sentPeers.has(p) {
			r.PeersRemoved = append(r.PeersRemoved, p)
			st.sentPeers.del(p)
		}
	}
	if recheckAll {
		_, now := s.peerList(c, id)
		now.each(func(p int64) {
			if _, d := dirty[p]; d || !st.sentPeers.has(p) {
				add(p)
			}
		})
		st.sentPeers.each(func(p int64) {
			if !now.has(p) {
				remove(p)
			}
		})
		st.sentPeers = now
	} else {
		for p := range dirty {
			if p != id && c.visible(id, p) {
				add(p)
			} else {
				remove(p)
			}
		}
		for _, p := range recheck {
			if _, d := dirty[p]; d || p == id {
				continue
			}
			switch vis := c.visible(id, p); {
			case vis && !st.sentPeers.has(p):
				add(p)
			case !vis:
				remove(p)
			}
		}
	}
	if rulesJSON == nil && r.FilterDelta == nil && r.RecordFromDelta == nil && r.Self == nil && len(changed) == 0 && len(r.PeersRemoved) == 0 {
		return nil, held
	}
	slices.Sort(changed)
	slices.Sort(r.PeersRemoved)
	b, err := json.Marshal(&r)
	if err != nil {
		s.logf("control: node %d: encoding a map delta: %v", id, err)
		return nil, held
	}
	out := make([]byte, 1, len(b)+len(rulesJSON)+len(changed)*512)
	out[0] = '{'
	field := func(name string) {
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(append(append(out, '"'), name...), `":`...)
	}
	if rulesJSON != nil {
		field("rules")
		out = append(out, rulesJSON...)
	}
	if len(changed) > 0 {
		field("peersChanged")
		out = append(out, '[')
		for i, p := range changed {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, s.nodeJSON(s.nodes[p])...)
		}
		out = append(out, ']')
	}
	if len(b) > 2 { // the other fields, between r's braces
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, b[1:len(b)-1]...)
	}
	return append(out, '}'), held
}

// peerList is the peers node id sees, sorted, and as a set. Callers hold s.mu (read).
func (s *Server) peerList(c *compiled, id int64) ([]int64, peerSet) {
	var ids []int64
	var set peerSet
	s.peersOf(c, id, func(p int64) {
		if _, ok := s.nodes[p]; ok {
			ids = append(ids, p)
			set.add(p)
		}
	})
	slices.Sort(ids)
	return ids, set
}

func sshOf(c *compiled, id int64) []rules.SSHRule {
	if nr := c.rulesOf(id); nr != nil {
		return nr.SSH
	}
	return nil
}

// sshFor is node id's SSH rules as a client of st's version reads them: before
// controlws.VersionRecording an agent may let an enforceRecorder login in unrecorded, so
// such a rule goes to it refusing instead (fail closed).
func (st *stream) sshFor(c *compiled, id int64) []rules.SSHRule {
	ssh := sshOf(c, id)
	if st.recording || !slices.ContainsFunc(ssh, func(r rules.SSHRule) bool { return r.EnforceRecorder }) {
		return ssh
	}
	out := slices.Clone(ssh)
	for i, r := range out {
		if r.EnforceRecorder {
			out[i].Action, out[i].Recorders = rules.Reject, nil
		}
	}
	return out
}

// recordFromFor is node id's RecordFrom for st's client: none before VersionRecording.
func (st *stream) recordFromFor(c *compiled, id int64) []netip.Addr {
	if nr := c.rulesOf(id); nr != nil && st.recording {
		return nr.RecordFrom
	}
	return nil
}

// fullMapJSON encodes the whole map response for node id: itself, peers (sorted by ID),
// their users and its own rules (ssh and recordFrom as the stream's version reads them).
// Each node's entry is encoded once and reused by every map holding it (liveNode.js).
// Callers hold s.mu (read).
func (s *Server) fullMapJSON(c *compiled, id int64, peers []int64, ssh []rules.SSHRule, recordFrom []netip.Addr) []byte {
	users := map[int64]bool{}
	var buf bytes.Buffer
	buf.WriteString(`{"full":{"self":`)
	if ln, ok := s.nodes[id]; ok {
		buf.Write(s.nodeJSON(ln))
		users[ln.n.User] = true
	} else {
		b, _ := json.Marshal(controlws.Node{})
		buf.Write(b)
	}
	buf.WriteString(`,"peers":[`)
	for i, p := range peers {
		if i > 0 {
			buf.WriteByte(',')
		}
		ln := s.nodes[p]
		buf.Write(s.nodeJSON(ln))
		users[ln.n.User] = true
	}
	var ups []controlws.UserProfile
	for uid := range users {
		if p, ok := s.users[uid]; ok {
			ups = append(ups, p)
		}
	}
	slices.SortFunc(ups, func(a, b controlws.UserProfile) int { return cmp.Compare(a.ID, b.ID) })
	tail, _ := json.Marshal(struct {
		Users       []controlws.UserProfile `json:"users"`
		DERPMap     json.RawMessage         `json:"derpMap"`
		Domain      string                  `json:"domain,omitempty"`
		SSHRules    []rules.SSHRule         `json:"sshRules,omitempty"`
		ControlURLs []string                `json:"controlURLs,omitempty"` // replicaurls.go
		RecordFrom  []netip.Addr            `json:"recordFrom,omitempty"`
	}{ups, s.derpJSON, s.cfg.Domain, ssh, s.replURLs.list(), recordFrom})
	buf.WriteString(`],`)
	buf.Write(tail[1 : len(tail)-1]) // the tail's fields, between its braces
	buf.WriteString(`,"packetFilter":`)
	buf.Write(appendFilterJSON(nil, c, id))
	buf.WriteString(`}}`)
	return buf.Bytes()
}

// nodeJSON is ln's entry as peers get it, encoded once per change of the node or of its
// online state. Callers hold s.mu (read).
func (s *Server) nodeJSON(ln *liveNode) []byte {
	if b := ln.js.Load(); b != nil {
		return *b
	}
	b, _ := json.Marshal(s.nodeView(ln))
	ln.js.Store(&b)
	return b
}

// publishChanged tells the streams that may see node id that it changed (its own
// streams: Self), and pokes the streams of nodes whose rules changed since the last
// publish. Callers hold writeMu, and have updated the cache.
func (s *Server) publishChanged(id int64) {
	s.publishChangedAll(map[int64]struct{}{id: {}})
}

// publishChangedAll is publishChanged for each of ids, with one compilation.
func (s *Server) publishChangedAll(ids map[int64]struct{}) {
	defer s.changes.notify()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.streams) == 0 {
		return // nobody to tell: compile when a stream asks
	}
	c := s.compiledLocked()
	for id := range ids {
		mark := func(p int64) {
			for st := range s.streams[p] {
				st.markPeer(id)
			}
		}
		for st := range s.streams[id] {
			st.markSelf()
		}
		s.peersOf(c, id, mark)
		if ln, ok := s.nodes[id]; ok {
			if prev := ln.prevPeers.Swap(nil); prev != nil {
				for _, p := range *prev {
					mark(p)
				}
			}
		}
	}
	s.pokeChangedLocked(c)
}

// pokeChangedLocked wakes the streams of the nodes whose rules changed since the last
// call (every stream when that is too far back). Callers hold writeMu and s.mu (read).
func (s *Server) pokeChangedLocked(c *compiled) {
	ids, ok := c.changedSince(s.pokedGen.Load())
	s.pokedGen.Store(c.gen)
	if !ok {
		for _, sts := range s.streams {
			for st := range sts {
				st.poke()
			}
		}
		return
	}
	for _, p := range ids {
		for st := range s.streams[p] {
			st.poke()
		}
	}
}

// peersNowLocked lists the peers node id sees now. Callers hold s.mu.
func (s *Server) peersNowLocked(id int64) []int64 {
	ids, _ := s.peerList(s.compiledLocked(), id)
	return ids
}

// publishRemoved tells the streams of peers, the nodes that saw node id, that it is gone.
func (s *Server) publishRemoved(id int64, peers []int64) {
	defer s.changes.notify()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, p := range peers {
		for st := range s.streams[p] {
			st.markPeer(id)
		}
	}
	s.pokeChangedLocked(s.compiledLocked())
}
