//go:build !js

package derpws

import (
	"sync"

	"tsconnect/key"
)

// sendQueue is one destination's packets waiting for its writer, kept per source so that
// one source's flood cannot crowd out another's packets:
//   - when the queue is full, the packet dropped to make room is the oldest of the source
//     that holds the most of it (on a tie, the arriving packet's own source), so a flooding
//     source loses its own packets while a light one loses none;
//   - the writer takes packets round robin over the sources, one each per turn.
//
// It holds at most depth packets from at most depth sources and at most maxBytes of packet
// buffers (counted by capacity, what they cost in memory), so its memory is bounded however
// large the packets; what it holds beyond queueReserve it draws from the relay-wide budget,
// and when that is spent it drops as if full. Enqueue never blocks on the writer.
type sendQueue struct {
	mu       sync.Mutex
	depth    int
	maxBytes int
	budget   *queueBudget             // the relay's; nil for none
	n        int                      // packets queued
	bytes    int                      // capacity of the queued packets' buffers
	bySrc    map[key.Public]*srcQueue // sources with packets queued
	ring     []*srcQueue              // the same sources, in round-robin order
	next     int                      // index in ring the writer serves next
	free     []*srcQueue              // emptied source queues, for reuse
	closed   bool
	ready    chan struct{} // signalled when the queue goes from empty to not empty
}

// srcQueue is one source's packets, oldest first.
type srcQueue struct {
	src  key.Public
	pkts []packet
	head int // index of the oldest packet in pkts
}

func (q *srcQueue) len() int { return len(q.pkts) - q.head }

// push appends p, moving the live packets to the front when the slice is full, so a source
// that never empties does not grow it.
func (q *srcQueue) push(p packet) {
	if q.head > 0 && len(q.pkts) == cap(q.pkts) {
		n := copy(q.pkts, q.pkts[q.head:])
		clear(q.pkts[n:])
		q.pkts, q.head = q.pkts[:n], 0
	}
	q.pkts = append(q.pkts, p)
}

func (q *srcQueue) pop() packet {
	p := q.pkts[q.head]
	q.pkts[q.head] = packet{}
	q.head++
	return p
}

// dropReason says why enqueue dropped a packet; dropNone when it dropped nothing.
type dropReason int

const (
	dropNone dropReason = iota
	// dropOwnShare: the queue was full and the arriving packet's source held the most of it;
	// its own oldest packet was dropped.
	dropOwnShare
	// dropFairShare: the queue was full and a packet of a heavier source was dropped to make
	// room for a lighter source's.
	dropFairShare
	// dropClosed: the destination's connection has ended.
	dropClosed
	// dropRelayFull: the relay-wide budget of queued bytes was spent; a packet of this queue's
	// heaviest source was dropped to make room within the queue's reserve.
	dropRelayFull
)

// newSendQueue returns a queue of at most depth packets and maxBytes of buffers, drawing on
// budget (nil for none) beyond queueReserve; maxBytes must be at least MaxPacketSize, so that
// any one packet fits.
func newSendQueue(depth, maxBytes int, budget *queueBudget) *sendQueue {
	return &sendQueue{
		depth:    depth,
		maxBytes: maxBytes,
		budget:   budget,
		bySrc:    make(map[key.Public]*srcQueue),
		ready:    make(chan struct{}, 1),
	}
}

// enqueue queues p (its source is p.peer). If that took dropping packets (one for the count,
// maybe more for the bytes), it recycles their buffers and returns how many it dropped and
// the reason for the last.
func (q *sendQueue) enqueue(p packet) (int, dropReason) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		putBuf(p.buf)
		return 1, dropClosed
	}
	dropped := 0
	reason := dropNone
	own := q.bySrc[p.peer]
	size := cap(p.buf.b)
	for q.n > 0 {
		full := q.n >= q.depth || q.bytes+size > q.maxBytes
		if !full && q.budget.take(overReserve(q.bytes+size)-overReserve(q.bytes)) {
			break
		}
		heavy := own
		for _, sq := range q.ring {
			if heavy == nil || heavy.len() == 0 || sq.len() > heavy.len() {
				heavy = sq
			}
		}
		b := heavy.pop().buf
		q.n--
		q.shrinkLocked(cap(b.b))
		putBuf(b)
		dropped++
		switch {
		case !full:
			reason = dropRelayFull
		case heavy == own:
			reason = dropOwnShare
		default:
			reason = dropFairShare
		}
		if heavy.len() == 0 && heavy != own {
			q.removeLocked(heavy)
		}
	}
	if q.n == 0 {
		q.budget.add(overReserve(size))
	}
	if own == nil {
		own = q.addLocked(p.peer)
	}
	own.push(p)
	q.n++
	q.bytes += size
	if q.n == 1 {
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
	q.mu.Unlock()
	return dropped, reason
}

// shrinkLocked takes n bytes of buffers off the queue's count, giving back to the budget what
// they drew from it.
func (q *sendQueue) shrinkLocked(n int) {
	q.budget.give(overReserve(q.bytes) - overReserve(q.bytes-n))
	q.bytes -= n
}

// addLocked starts the queue of a source with nothing queued.
func (q *sendQueue) addLocked(src key.Public) *srcQueue {
	var sq *srcQueue
	if k := len(q.free); k > 0 {
		sq, q.free = q.free[k-1], q.free[:k-1]
	} else {
		sq = new(srcQueue)
	}
	sq.src = src
	q.bySrc[src] = sq
	q.ring = append(q.ring, sq)
	return sq
}

// removeLocked forgets an emptied source queue.
func (q *sendQueue) removeLocked(sq *srcQueue) {
	delete(q.bySrc, sq.src)
	for i, x := range q.ring {
		if x == sq {
			q.ring = append(q.ring[:i], q.ring[i+1:]...)
			if q.next > i {
				q.next--
			}
			break
		}
	}
	if q.next >= len(q.ring) {
		q.next = 0
	}
	sq.pkts, sq.head = sq.pkts[:0], 0
	q.free = append(q.free, sq)
}

// take appends up to max queued packets to dst, round robin over the sources, and returns it.
func (q *sendQueue) take(dst []packet, max int) []packet {
	q.mu.Lock()
	for q.n > 0 && max > 0 {
		sq := q.ring[q.next]
		p := sq.pop()
		dst = append(dst, p)
		q.n--
		q.shrinkLocked(cap(p.buf.b))
		max--
		if sq.len() == 0 {
			q.removeLocked(sq) // the next source slides into index next
		} else {
			q.next = (q.next + 1) % len(q.ring)
		}
	}
	q.mu.Unlock()
	return dst
}

// close refuses further packets and returns the count of those still queued, whose buffers
// it recycles.
func (q *sendQueue) close() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	n := q.n
	for _, sq := range q.ring {
		for sq.len() > 0 {
			putBuf(sq.pop().buf)
		}
	}
	q.shrinkLocked(q.bytes)
	q.ring, q.bySrc, q.n = nil, nil, 0
	return n
}
