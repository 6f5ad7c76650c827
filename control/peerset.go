package control

import "math/bits"

// peerSet is a set of node IDs as a bitmap: one bit per ID up to the largest held, so a
// stream remembers the 10,000 peers it was sent in 1.25 KB.
type peerSet []uint64

func (ps peerSet) has(id int64) bool {
	i := uint64(id) / 64
	return i < uint64(len(ps)) && ps[i]&(1<<(uint64(id)%64)) != 0
}

func (ps *peerSet) add(id int64) {
	i := uint64(id) / 64
	for uint64(len(*ps)) <= i {
		*ps = append(*ps, 0)
	}
	(*ps)[i] |= 1 << (uint64(id) % 64)
}

func (ps peerSet) del(id int64) {
	if i := uint64(id) / 64; i < uint64(len(ps)) {
		ps[i] &^= 1 << (uint64(id) % 64)
	}
}

// each calls fn for every ID in the set, in increasing order.
func (ps peerSet) each(fn func(int64)) {
	for i, w := range ps {
		for w != 0 {
			b := bits.TrailingZeros64(w)
			fn(int64(i*64 + b))
			w &^= 1 << b
		}
	}
}
