package control

import (
	"cmp"
	"encoding/binary"
	"hash"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"tsconnect/policy"
	"tsconnect/policy/rules"
)

// maxRuleLog bounds compiled.log: a stream further behind rechecks all its peers.
const maxRuleLog = 4096

// compiled is the policy compiled for every live node at one generation of the network:
// each node's rules, what each node's filter admits (for peer visibility, without a table
// of node pairs), and which nodes' rules changed at which generation. A compilation is
// built from the one before by copy on write (its maps cloned, the slices they hold never
// written in place), so readers of an older one are undisturbed.
type compiled struct {
	gen   uint64
	nodes nodeTable           // live nodes' compiled entries, by ID
	dsts  map[*srcSet][]int64 // set → the nodes whose filter holds it
	// byAddr indexes the small sets by the single addresses they list; wide holds the sets
	// with wider prefixes ("*", a subnet) or many addresses, which are searched instead, so
	// a set of every member's address costs no index update when a member joins.
	byAddr map[netip.Addr][]*srcSet
	wide   []*srcSet
	// sets are the source sets in use by the hash of their list: equal lists share one set.
	sets map[uint64][]*srcSet
	// log lists the nodes whose filter admits other sources now (or that are new), oldest
	// first, for the generations after logFrom: a stream last sent at logFrom or later
	// rechecks only them. A node whose rules changed only in ports or SSH rules is not
	// listed: who may talk with it stays as it was (a dense policy's edit changes every
	// node's rules, and rechecking all of them on every stream was O(N²)).
	log     []ruleChange
	logFrom uint64
	// own holds the dsts slices this compilation made, which it may append to in place;
	// ownMaps says which of dsts, byAddr and sets it copied already (copied when first written).
	own     map[*srcSet]bool
	ownMaps uint8
}

// The maps of a compilation, as bits of compiled.ownMaps.
const (
	ownDsts = 1 << iota
	ownByAddr
	ownSets
)

// writable copies the map m of c (one of ownDsts, ownByAddr, ownSets) if c did not yet.
func writable[K comparable, V any](c *compiled, bit uint8, m *map[K]V) map[K]V {
	if c.ownMaps&bit == 0 {
		*m = maps.Clone(*m)
		c.ownMaps |= bit
	}
	return *m
}

// rulesOf is node id's compiled rules, nil for no live node.
func (c *compiled) rulesOf(id int64) *rules.NodeRules {
	if e := c.nodes.get(id); e != nil {
		return e.rules
	}
	return nil
}

// addrsOf is node id's addresses, nil for no live node.
func (c *compiled) addrsOf(id int64) []netip.Prefix {
	if e := c.nodes.get(id); e != nil {
		return e.addrs
	}
	return nil
}

// accOf is the source set of each rule of node id's filter.
func (c *compiled) accOf(id int64) []*srcSet {
	if e := c.nodes.get(id); e != nil {
		return e.acc
	}
	return nil
}

// keyOrZero is the hash of node id's rules, 0 for no live node.
func (c *compiled) keyOrZero(id int64) uint64 {
	k, _ := c.keyOf(id)
	return k
}

// keyOf is the hash of node id's rules (ok false for no live node).
func (c *compiled) keyOf(id int64) (key uint64, ok bool) {
	if e := c.nodes.get(id); e != nil {
		return e.key, true
	}
	return 0, false
}

// sameVisibility reports whether two compiled entries of one node admit the same sources
// from the same addresses: then no other node sees it differently.
func sameVisibility(a, b *compiledNode) bool {
	return slices.Equal(a.addrs, b.addrs) && sameSources(a.acc, b.acc)
}

// sameSources reports whether two filters' source sets hold the same lists (in any order,
// as sets: which sources a filter admits, whatever the rules' ports).
func sameSources(a, b []*srcSet) bool {
	covered := func(x, y []*srcSet) bool {
		for _, ss := range x {
			if !slices.ContainsFunc(y, func(o *srcSet) bool {
				return o == ss || o.hash == ss.hash && slices.Equal(o.src, ss.src)
			}) {
				return false
			}
		}
		return true
	}
	return covered(a, b) && covered(b, a)
}

// ruleChange says node id's filter admits other sources since generation gen.
type ruleChange struct {
	gen uint64
	id  int64
}

// rulesCache holds the newest compiled form; it is rebuilt on demand when stale: for the
// nodes the changes since can concern only, unless the policy or the users changed.
type rulesCache struct {
	mu sync.Mutex
	c  *compiled
	// comp compiled c's network and is brought up to date with each change
	// (policy.Compiler.Update); held is the node views it holds, by ID. Both are only
	// touched under mu, never by readers of a compilation.
	comp *policy.Compiler
	held map[int64]policy.Node
	// touched holds the nodes changed since c; all says something else changed.
	touched map[int64]struct{}
	all     bool
}

// touch records a node change (a join, a change of its policy view, a logout or a
// deletion) for the next compilation.
func (rc *rulesCache) touch(id int64) {
	rc.mu.Lock()
	if rc.touched == nil {
		rc.touched = map[int64]struct{}{}
	}
	rc.touched[id] = struct{}{}
	rc.mu.Unlock()
}

// invalidate makes the next compilation a whole one (the policy, a user or groups changed).
func (rc *rulesCache) invalidate() {
	rc.mu.Lock()
	rc.all, rc.touched = true, nil
	rc.mu.Unlock()
}

// compiledLocked returns the policy compiled for the current generation, compiling it if
// needed. Callers hold s.mu (read or write). Changes to a few nodes since the last
// compilation bring the compiler up to date with them and recompile those nodes and the
// ones it names as affected, on a copy of the last compilation; a policy or user change,
// or many changes at once, compile every node afresh.
func (s *Server) compiledLocked() *compiled {
	rc := &s.rc
	rc.mu.Lock()
	defer rc.mu.Unlock()
	old := rc.c
	if old != nil && old.gen == s.gen {
		return old
	}
	defer observeSince(s.m.compile, time.Now())
	touched := rc.touched
	whole := old == nil || rc.all || rc.comp == nil || len(touched) > old.nodes.n/4+8
	rc.touched, rc.all = nil, false
	var c *compiled
	var redo []policy.Node
	if whole {
		c = newCompiled(s.gen)
		if old != nil {
			// The log goes on: a stream then rechecks the nodes whose rules changed and
			// those its own new filter admits or no longer admits, not every node.
			c.log, c.logFrom = old.log, old.logFrom
		}
		rc.held = map[int64]policy.Node{}
		for id, ln := range s.nodes {
			if !ln.loggedOut {
				v := s.policyNodeLocked(id, ln)
				redo = append(redo, v)
				rc.held[id] = v
			}
		}
		slices.SortFunc(redo, func(a, b policy.Node) int { return cmp.Compare(a.ID, b.ID) })
		rc.comp = s.policy.NewCompiler(&policy.Network{Nodes: redo})
	} else {
		c = old.next(s.gen)
		var gone, now []policy.Node
		for id := range touched {
			if v, ok := rc.held[id]; ok {
				gone = append(gone, v)
				delete(rc.held, id)
			}
			if ln, ok := s.nodes[id]; ok && !ln.loggedOut {
				v := s.policyNodeLocked(id, ln)
				now = append(now, v)
				rc.held[id] = v
			} else {
				c.drop(id)
			}
		}
		redo = now
		for _, id := range rc.comp.Update(gone, now) {
			if _, self := touched[id]; !self {
				if v, ok := rc.held[id]; ok {
					redo = append(redo, v)
				}
			}
		}
	}
	memo := map[*netip.Prefix]*srcSet{}
	for _, d := range redo {
		c.set(d.ID, d.Addresses, rc.comp.Compile(d), memo)
	}
	c.own = nil
	if old != nil {
		for _, d := range redo {
			if oe, ne := old.nodes.get(d.ID), c.nodes.get(d.ID); oe == nil || ne == nil || oe.key != ne.key && !sameVisibility(oe, ne) {
				c.log = append(c.log, ruleChange{c.gen, d.ID})
			}
		}
		if len(c.log) > maxRuleLog {
			c.logFrom = c.log[len(c.log)-maxRuleLog].gen
			i := len(c.log) - maxRuleLog
			for i < len(c.log) && c.log[i].gen == c.logFrom {
				i++
			}
			c.log = slices.Clone(c.log[i:])
		}
	}
	rc.c = c
	return c
}

// hashRule adds filter rule r, whose sources hash to src, to h.
func hashRule(h hash.Hash64, r rules.FilterRule, src uint64) {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 64), src)
	for _, p := range r.Dst {
		b, _ = p.AppendBinary(b)
	}
	b = append(b, 0xff)
	for _, pr := range r.Ports {
		b = binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, pr.First), pr.Last)
	}
	b = append(b, 0xff)
	for _, pr := range r.Protos {
		b = append(b, byte(pr))
	}
	b = append(append(b, 0xff), r.Origin...)
	h.Write(append(b, 0))
}

// changedSince lists the nodes whose rules changed after generation gen; ok is false when
// the log does not reach back that far.
func (c *compiled) changedSince(gen uint64) (ids []int64, ok bool) {
	if gen < c.logFrom {
		return nil, false
	}
	i, _ := slices.BinarySearchFunc(c.log, gen+1, func(e ruleChange, g uint64) int { return cmp.Compare(e.gen, g) })
	for _, e := range c.log[i:] {
		ids = append(ids, e.id)
	}
	return ids, true
}

// policyNodeLocked is node ln as the policy sees it. A tagged node belongs to no user.
func (s *Server) policyNodeLocked(id int64, ln *liveNode) policy.Node {
	n := policy.Node{ID: id, Name: ln.n.Name, Addresses: ln.n.Addresses, Tags: ln.n.Tags}
	if len(n.Tags) == 0 {
		n.User = s.users[ln.n.User].LoginName
		n.UserGroups = s.groups[ln.n.User]
	}
	return n
}

// admits reports whether dst's filter admits anything from one of addrs.
func (c *compiled) admits(dst int64, addrs []netip.Prefix) bool {
	for _, ss := range c.accOf(dst) {
		for _, a := range addrs {
			if ss.has(a.Addr()) {
				return true
			}
		}
	}
	return false
}

// visible reports whether nodes a and b may talk in either direction, and so see each other.
func (c *compiled) visible(a, b int64) bool {
	return c.admits(a, c.addrsOf(b)) || c.admits(b, c.addrsOf(a))
}

// peersOf calls fn once for every live node that may talk with id in either direction,
// without visiting every node unless id's own filter admits wide prefixes.
// Callers hold s.mu (read).
func (s *Server) peersOf(c *compiled, id int64, fn func(int64)) {
	self := c.nodes.get(id)
	if self == nil {
		return
	}
	var seen peerSet
	seen.add(id)
	visit := func(p int64) {
		if !seen.has(p) {
			seen.add(p)
			if c.nodes.get(p) != nil {
				fn(p)
			}
		}
	}
	wide := false
	for _, ss := range self.acc {
		if len(ss.wide) > 0 {
			wide = true
			continue
		}
		for _, a := range ss.exact {
			if p, ok := s.addrs[a.Addr()]; ok {
				visit(p)
			}
		}
	}
	if wide {
		c.nodes.each(func(p int64, e *compiledNode) {
			if !seen.has(p) && c.admits(id, e.addrs) {
				visit(p)
			}
		})
	}
	for _, a := range self.addrs {
		for _, ss := range c.byAddr[a.Addr()] {
			for _, p := range c.dsts[ss] {
				visit(p)
			}
		}
	}
	for _, ss := range c.wide {
		if slices.ContainsFunc(self.addrs, func(a netip.Prefix) bool { return ss.has(a.Addr()) }) {
			for _, p := range c.dsts[ss] {
				visit(p)
			}
		}
	}
}

// publishAll tells every stream the rules may have changed (after a policy or user change): each
// rechecks its rules and peers, and hears only of what changed for it. Callers hold writeMu.
func (s *Server) publishAll() { s.eachStream((*stream).poke) }

// publishUser tells every stream a user changed (its profile or groups, after a sign-in):
// the streams that see one of its nodes get the node again with the new profile, and
// every stream rechecks its rules and peers. Callers hold writeMu.
func (s *Server) publishUser(uid int64) {
	s.mu.RLock()
	c := s.compiledLocked()
	for id, ln := range s.nodes {
		if ln.n.User != uid {
			continue
		}
		s.peersOf(c, id, func(p int64) {
			for st := range s.streams[p] {
				st.markPeer(id)
			}
		})
	}
	s.mu.RUnlock()
	s.publishAll()
}

// eachStream calls fn for every stream, then tells the change watchers.
func (s *Server) eachStream(fn func(*stream)) {
	defer s.changes.notify()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, sts := range s.streams {
		for st := range sts {
			fn(st)
		}
	}
}
