package control

import (
	"encoding/json"
	"hash/maphash"
	"net/netip"
	"slices"
	"sync/atomic"
	"tsconnect/policy/rules"
)

// indexMax is the most single addresses a source set may list and still be indexed by
// address (compiled.byAddr); larger sets are searched (compiled.wide).
const indexMax = 64

// srcSet is one source list of compiled filters, shared by every filter rule holding an
// equal list. It is never modified once made.
type srcSet struct {
	src   []netip.Prefix
	exact []netip.Prefix // its single addresses, sorted (src itself when it has no wider prefix)
	wide  []netip.Prefix
	hash  uint64
	js    atomic.Pointer[[]byte] // src as JSON, encoded when first needed
}

// json is the set's list encoded as a filter rule's "src".
func (ss *srcSet) json() []byte {
	if b := ss.js.Load(); b != nil {
		return *b
	}
	// What json.Marshal writes, without its reflection: a prefix's text needs no escaping.
	b := make([]byte, 0, 2+len(ss.src)*24)
	b = append(b, '[')
	for i, p := range ss.src {
		if i > 0 {
			b = append(b, ',')
		}
		b, _ = p.AppendText(append(b, '"'))
		b = append(b, '"')
	}
	b = append(b, ']')
	ss.js.Store(&b)
	return b
}

// hashSeed seeds the hashes of source lists and rules (they never leave the process).
var hashSeed = maphash.MakeSeed()

// hashPrefixes hashes a source list, to find an equal set.
func hashPrefixes(src []netip.Prefix) uint64 {
	var h maphash.Hash
	h.SetSeed(hashSeed)
	b := make([]byte, 0, 18*64)
	for i, p := range src {
		a := p.Addr().As16()
		b = append(append(b, a[:]...), byte(p.Bits()), byte(p.Addr().BitLen()))
		if len(b) > 17*64 || i == len(src)-1 {
			h.Write(b)
			b = b[:0]
		}
	}
	return h.Sum64()
}

// comparePrefixes is the order of compiled source lists: by address, then length.
var comparePrefixes = rules.ComparePrefixes

func newSrcSet(src []netip.Prefix, hash uint64) *srcSet {
	ss := &srcSet{src: src, hash: hash, exact: src}
	if slices.ContainsFunc(src, func(p netip.Prefix) bool { return !p.IsSingleIP() }) {
		ss.exact = nil
		for _, p := range src {
			if p.IsSingleIP() {
				ss.exact = append(ss.exact, p)
			} else {
				ss.wide = append(ss.wide, p)
			}
		}
	}
	if !slices.IsSortedFunc(ss.exact, comparePrefixes) {
		ss.exact = slices.SortedFunc(slices.Values(ss.exact), comparePrefixes)
	}
	return ss
}

// has reports whether the set admits a.
func (ss *srcSet) has(a netip.Addr) bool {
	if _, ok := slices.BinarySearchFunc(ss.exact, netip.PrefixFrom(a, a.BitLen()), comparePrefixes); ok {
		return true
	}
	for _, p := range ss.wide {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// searched reports whether the set is in compiled.wide rather than indexed by address.
func (ss *srcSet) searched() bool { return len(ss.wide) > 0 || len(ss.exact) > indexMax }

// compileOwners numbers compilations, to own the node-table chunks each one wrote.
var compileOwners atomic.Uint64

// newCompiled is an empty compilation at generation gen.
func newCompiled(gen uint64) *compiled {
	return &compiled{gen: gen, nodes: nodeTable{owner: compileOwners.Add(1)}, dsts: map[*srcSet][]int64{},
		byAddr: map[netip.Addr][]*srcSet{}, sets: map[uint64][]*srcSet{}, own: map[*srcSet]bool{},
		ownMaps: ownDsts | ownByAddr | ownSets, logFrom: gen}
}

// next is a copy of c at generation gen to change (copy on write: the node table by
// chunk, the other maps when first written).
func (c *compiled) next(gen uint64) *compiled {
	return &compiled{gen: gen, nodes: c.nodes.next(compileOwners.Add(1)), dsts: c.dsts, byAddr: c.byAddr, wide: c.wide,
		sets: c.sets, own: map[*srcSet]bool{}, log: c.log, logFrom: c.logFrom}
}

// intern returns the set listing src, made and indexed if no equal one is in use.
func (c *compiled) intern(src []netip.Prefix) *srcSet {
	h := hashPrefixes(src)
	for _, ss := range c.sets[h] {
		if slices.Equal(ss.src, src) {
			return ss
		}
	}
	ss := newSrcSet(src, h)
	sets := writable(c, ownSets, &c.sets)
	sets[h] = append(slices.Clip(sets[h]), ss)
	if ss.searched() {
		c.wide = append(slices.Clip(c.wide), ss)
	} else {
		byAddr := writable(c, ownByAddr, &c.byAddr)
		for _, a := range ss.exact {
			byAddr[a.Addr()] = append(slices.Clip(byAddr[a.Addr()]), ss)
		}
	}
	return ss
}

// forget drops a set no filter holds any more from the index.
func (c *compiled) forget(ss *srcSet) {
	delete(writable(c, ownDsts, &c.dsts), ss)
	is := func(o *srcSet) bool { return o == ss }
	sets := writable(c, ownSets, &c.sets)
	if l := slices.DeleteFunc(slices.Clone(sets[ss.hash]), is); len(l) > 0 {
		sets[ss.hash] = l
	} else {
		delete(sets, ss.hash)
	}
	if ss.searched() {
		c.wide = slices.DeleteFunc(slices.Clone(c.wide), is)
		return
	}
	byAddr := writable(c, ownByAddr, &c.byAddr)
	for _, a := range ss.exact {
		if l := slices.DeleteFunc(slices.Clone(byAddr[a.Addr()]), is); len(l) > 0 {
			byAddr[a.Addr()] = l
		} else {
			delete(byAddr, a.Addr())
		}
	}
}

// addDst records that node id's filter holds ss.
func (c *compiled) addDst(ss *srcSet, id int64) {
	dsts := writable(c, ownDsts, &c.dsts)
	if !c.own[ss] {
		c.own[ss] = true
		dsts[ss] = append(slices.Clip(dsts[ss]), id)
		return
	}
	dsts[ss] = append(dsts[ss], id)
}

// delDst records that node id's filter no longer holds ss.
func (c *compiled) delDst(ss *srcSet, id int64) {
	d := c.dsts[ss]
	i := slices.Index(d, id)
	if i < 0 {
		return
	}
	if len(d) == 1 {
		c.forget(ss)
		return
	}
	if !c.own[ss] {
		c.own[ss] = true
		d = slices.Clone(d)
	}
	d[i] = d[len(d)-1]
	writable(c, ownDsts, &c.dsts)[ss] = d[:len(d)-1]
}

// drop forgets node id's compiled rules.
func (c *compiled) drop(id int64) {
	acc := c.accOf(id)
	for i, ss := range acc {
		if !slices.Contains(acc[:i], ss) {
			c.delDst(ss, id)
		}
	}
	c.nodes.put(id, nil)
}

// set records node id's compiled rules nr; memo maps a compiler's source lists (by their
// first element) to their sets within one compilation.
func (c *compiled) set(id int64, addrs []netip.Prefix, nr *rules.NodeRules, memo map[*netip.Prefix]*srcSet) {
	c.drop(id)
	acc := make([]*srcSet, len(nr.Filter))
	var mh maphash.Hash
	mh.SetSeed(hashSeed)
	h := &mh
	for i, r := range nr.Filter {
		ss := memo[&r.Src[0]]
		if ss == nil {
			ss = c.intern(r.Src)
			memo[&r.Src[0]] = ss
		}
		if !slices.Contains(acc[:i], ss) {
			c.addDst(ss, id)
		}
		acc[i] = ss
		hashRule(h, r, ss.hash)
	}
	if len(nr.SSH) > 0 {
		b, _ := json.Marshal(nr.SSH)
		h.Write(b)
	}
	if len(nr.RecordFrom) > 0 {
		h.WriteString("recordFrom")
		for _, a := range nr.RecordFrom {
			b := a.As16()
			h.Write(b[:])
		}
	}
	c.nodes.put(id, &compiledNode{rules: nr, addrs: addrs, acc: acc, key: h.Sum64()})
}

// accDiffLocked lists the live nodes holding an address that exactly one of the source
// lists old and now admits (each list's sets together); narrow is false when a set has wide
// prefixes, whose difference is not a list of addresses. Callers hold s.mu (read).
func (s *Server) accDiffLocked(old, now []*srcSet) (ids []int64, narrow bool) {
	if sameSources(old, now) {
		return nil, true // only ports or SSH rules changed: the same nodes may talk with it
	}
	union := func(sets []*srcSet) []netip.Prefix {
		var out []netip.Prefix
		for i, ss := range sets {
			if len(ss.wide) > 0 {
				return nil
			}
			if !slices.Contains(sets[:i], ss) {
				out = append(out, ss.exact...)
			}
		}
		if len(sets) > 1 {
			slices.SortFunc(out, comparePrefixes)
		}
		return out
	}
	for _, ss := range slices.Concat(old, now) {
		if len(ss.wide) > 0 {
			return nil, false
		}
	}
	a, b := union(old), union(now)
	note := func(x netip.Prefix) {
		if id, ok := s.addrs[x.Addr()]; ok {
			ids = append(ids, id)
		}
	}
	for len(a) > 0 || len(b) > 0 {
		switch {
		case len(b) == 0 || len(a) > 0 && comparePrefixes(a[0], b[0]) < 0:
			note(a[0])
			a = a[1:]
		case len(a) == 0 || comparePrefixes(b[0], a[0]) < 0:
			note(b[0])
			b = b[1:]
		default:
			a, b = a[1:], b[1:]
		}
	}
	return ids, true
}
