package control

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"hash"
	"hash/fnv"
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
// of node pairs), and which nodes' rules changed at which generation.
type compiled struct {
	gen   uint64
	rules map[int64]*rules.NodeRules
	addrs map[int64][]netip.Prefix // live nodes' addresses
	acc   map[int64][]*srcSet      // dst → the source sets its filter admits from
	// byAddr indexes the sets by the single addresses they list; wide holds the sets with
	// wider prefixes ("*", a subnet), which are checked against every address.
	byAddr map[netip.Addr][]*srcSet
	wide   []*srcSet
	// key is a hash of each node's rules, to find the nodes whose rules changed.
	key map[int64]uint64
	// sets are the source sets by their list's first element, for the next compilation.
	sets map[*netip.Prefix]*srcSet
	// log lists the nodes whose rules changed (or that are new), oldest first, for the
	// generations after logFrom: a stream last sent at logFrom or later rechecks only them.
	log     []ruleChange
	logFrom uint64
}

// ruleChange says node id's rules changed at generation gen.
type ruleChange struct {
	gen uint64
	id  int64
}

// srcSet is one source list of compiled filters, shared by every filter rule holding it.
type srcSet struct {
	exact []netip.Addr // sorted
	wide  []netip.Prefix
	dsts  []int64 // the nodes whose filter holds it
	hash  uint64
}

func newSrcSet(src []netip.Prefix) *srcSet {
	ss := &srcSet{}
	h := fnv.New64a()
	for _, p := range src {
		if p.IsSingleIP() {
			ss.exact = append(ss.exact, p.Addr())
		} else {
			ss.wide = append(ss.wide, p)
		}
		b, _ := p.MarshalBinary()
		h.Write(b)
	}
	slices.SortFunc(ss.exact, netip.Addr.Compare)
	ss.hash = h.Sum64()
	return ss
}

// has reports whether the set admits a.
func (ss *srcSet) has(a netip.Addr) bool {
	if _, ok := slices.BinarySearchFunc(ss.exact, a, netip.Addr.Compare); ok {
		return true
	}
	for _, p := range ss.wide {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// rulesCache holds the newest compiled form; it is rebuilt on demand when stale: for the
// nodes the changes since can concern only, unless the policy or the users changed.
type rulesCache struct {
	mu sync.Mutex
	c  *compiled
	// touched holds the old and new policy views of the nodes changed since c (logged-out
	// and deleted ones by their old view); all says something else changed.
	touched []policy.Node
	all     bool
}

// touch records a node change for the next compilation: its policy view before (if it had
// one) and after (if it has one).
func (rc *rulesCache) touch(views ...policy.Node) {
	rc.mu.Lock()
	rc.touched = append(rc.touched, views...)
	rc.mu.Unlock()
}

// invalidate makes the next compilation a whole one (the policy, a user or groups changed).
func (rc *rulesCache) invalidate() {
	rc.mu.Lock()
	rc.all, rc.touched = true, nil
	rc.mu.Unlock()
}

// compiledLocked returns the policy compiled for the current generation, compiling it if
// needed. Callers hold s.mu (read or write).
func (s *Server) compiledLocked() *compiled {
	s.rc.mu.Lock()
	defer s.rc.mu.Unlock()
	old := s.rc.c
	if old != nil && old.gen == s.gen {
		return old
	}
	defer observeSince(s.m.compile, time.Now())
	nw := &policy.Network{}
	for _, u := range s.users {
		nw.Users = append(nw.Users, policy.User{Email: u.LoginName})
	}
	for id, ln := range s.nodes {
		if ln.loggedOut {
			continue
		}
		nw.Nodes = append(nw.Nodes, s.policyNodeLocked(id, ln))
	}
	slices.SortFunc(nw.Nodes, func(a, b policy.Node) int { return cmp.Compare(a.ID, b.ID) })
	c := &compiled{gen: s.gen, rules: make(map[int64]*rules.NodeRules, len(nw.Nodes)),
		addrs: make(map[int64][]netip.Prefix, len(nw.Nodes)), acc: make(map[int64][]*srcSet, len(nw.Nodes)),
		byAddr: map[netip.Addr][]*srcSet{}, key: make(map[int64]uint64, len(nw.Nodes))}
	// Compile only the nodes the changes can concern when that is known and few; the
	// others keep their rules (and source sets), which no change touched.
	touched := s.rc.touched
	incremental := old != nil && !s.rc.all && len(touched) <= len(nw.Nodes)/4+8
	s.rc.touched, s.rc.all = nil, false
	var comp *policy.Compiler
	compile := func(d policy.Node) *rules.NodeRules {
		if incremental {
			if nr, ok := old.rules[d.ID]; ok && !slices.ContainsFunc(touched, func(t policy.Node) bool {
				return t.ID == d.ID || s.policy.Affects(t, d)
			}) {
				return nr
			}
		}
		if comp == nil {
			comp = s.policy.NewCompiler(nw)
		}
		return comp.Compile(d)
	}
	sets := map[*netip.Prefix]*srcSet{}
	var oldSets map[*netip.Prefix]*srcSet
	if old != nil {
		oldSets = old.sets
	}
	c.sets = sets
	for _, d := range nw.Nodes {
		nr := compile(d)
		c.rules[d.ID] = nr
		c.addrs[d.ID] = d.Addresses
		h := fnv.New64a()
		for _, r := range nr.Filter {
			ss := sets[&r.Src[0]]
			if ss == nil {
				if o := oldSets[&r.Src[0]]; o != nil {
					ss = &srcSet{exact: o.exact, wide: o.wide, hash: o.hash} // dsts are per compilation
				} else {
					ss = newSrcSet(r.Src)
				}
				sets[&r.Src[0]] = ss
				for _, a := range ss.exact {
					c.byAddr[a] = append(c.byAddr[a], ss)
				}
				if len(ss.wide) > 0 {
					c.wide = append(c.wide, ss)
				}
			}
			if !slices.Contains(c.acc[d.ID], ss) {
				c.acc[d.ID] = append(c.acc[d.ID], ss)
				ss.dsts = append(ss.dsts, d.ID)
			}
			hashRule(h, r, ss.hash)
		}
		if len(nr.SSH) > 0 {
			b, _ := json.Marshal(nr.SSH)
			h.Write(b)
		}
		c.key[d.ID] = h.Sum64()
	}
	c.logFrom = s.gen
	if old != nil {
		c.log, c.logFrom = old.log, old.logFrom
		for _, d := range nw.Nodes {
			if k, ok := old.key[d.ID]; !ok || k != c.key[d.ID] {
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
	s.rc.c = c
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
	for _, ss := range c.acc[dst] {
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
	return c.admits(a, c.addrs[b]) || c.admits(b, c.addrs[a])
}

// peersOf calls fn once for every live node that may talk with id in either direction,
// without visiting every node unless id's own filter admits wide prefixes.
// Callers hold s.mu (read).
func (s *Server) peersOf(c *compiled, id int64, fn func(int64)) {
	if _, ok := c.addrs[id]; !ok {
		return
	}
	seen := map[int64]bool{id: true}
	visit := func(p int64) {
		if !seen[p] {
			seen[p] = true
			if _, live := c.addrs[p]; live {
				fn(p)
			}
		}
	}
	wide := false
	for _, ss := range c.acc[id] {
		if len(ss.wide) > 0 {
			wide = true
			continue
		}
		for _, a := range ss.exact {
			if p, ok := s.addrs[a]; ok {
				visit(p)
			}
		}
	}
	if wide {
		for p := range c.addrs {
			if !seen[p] && c.admits(id, c.addrs[p]) {
				visit(p)
			}
		}
	}
	for _, a := range c.addrs[id] {
		for _, ss := range c.byAddr[a.Addr()] {
			for _, p := range ss.dsts {
				visit(p)
			}
		}
	}
	for _, ss := range c.wide {
		if slices.ContainsFunc(c.addrs[id], func(a netip.Prefix) bool { return ss.has(a.Addr()) }) {
			for _, p := range ss.dsts {
				visit(p)
			}
		}
	}
}

// publishAll tells every stream the rules may have changed (after a policy change): each
// rechecks its rules and peers, and hears only of what changed for it. Callers hold writeMu.
func (s *Server) publishAll() { s.eachStream((*stream).poke) }

// publishFull sends every stream a new full map: after a user's profile changed or a user
// was deleted, since deltas never take a user out of a map. Callers hold writeMu.
func (s *Server) publishFull() { s.eachStream((*stream).markFull) }

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
