package control

import (
	"net/netip"

	"tsconnect/policy/rules"
)

// chunkSize is how many node IDs one chunk of a nodeTable holds.
const chunkSize = 256

// compiledNode is one live node in a compilation: its rules, its addresses, the source set
// of each rule of its filter and a hash of its rules. It is never modified once made.
type compiledNode struct {
	rules *rules.NodeRules
	addrs []netip.Prefix
	acc   []*srcSet
	key   uint64
}

// nodeTable maps node IDs (small, dense: the store numbers them) to their compiled
// entries, in chunks shared between compilations and copied on write: a new compilation
// copies the chunk directory (40 pointers at 10,000 nodes) and each chunk it writes, not
// every entry as a map's clone would.
type nodeTable struct {
	chunks []*nodeChunk
	n      int    // entries held
	owner  uint64 // chunks stamped with it may be written in place
}

type nodeChunk struct {
	owner uint64
	e     [chunkSize]*compiledNode
}

// get is node id's entry, nil if it has none.
func (t *nodeTable) get(id int64) *compiledNode {
	i := uint64(id) / chunkSize
	if i >= uint64(len(t.chunks)) || t.chunks[i] == nil {
		return nil
	}
	return t.chunks[i].e[uint64(id)%chunkSize]
}

// put sets node id's entry (nil removes it), copying its chunk first unless it is t's.
func (t *nodeTable) put(id int64, e *compiledNode) {
	i := uint64(id) / chunkSize
	if i >= uint64(len(t.chunks)) {
		if e == nil {
			return
		}
		t.chunks = append(t.chunks, make([]*nodeChunk, i+1-uint64(len(t.chunks)))...)
	}
	ch := t.chunks[i]
	switch {
	case ch == nil && e == nil:
		return
	case ch == nil:
		ch = &nodeChunk{owner: t.owner}
	case ch.owner != t.owner:
		cp := *ch
		cp.owner = t.owner
		ch = &cp
	}
	t.chunks[i] = ch
	j := uint64(id) % chunkSize
	switch {
	case ch.e[j] == nil && e != nil:
		t.n++
	case ch.e[j] != nil && e == nil:
		t.n--
	}
	ch.e[j] = e
}

// next is a copy of t to change, for the compilation owner (never 0).
func (t *nodeTable) next(owner uint64) nodeTable {
	return nodeTable{chunks: append([]*nodeChunk(nil), t.chunks...), n: t.n, owner: owner}
}

// each calls fn for every entry, by increasing ID.
func (t *nodeTable) each(fn func(id int64, e *compiledNode)) {
	for i, ch := range t.chunks {
		if ch == nil {
			continue
		}
		for j, e := range ch.e {
			if e != nil {
				fn(int64(i*chunkSize+j), e)
			}
		}
	}
}
