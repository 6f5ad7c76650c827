//go:build !js

package derpws

import "sync/atomic"

// queueBudget is the relay-wide bound on bytes of packets queued for clients (ServerOptions.
// MaxQueuedBytes): every client's send queue holds its first queueReserve bytes on its own
// and draws what it queues beyond them from here, so the relay's queued packets take at most
// max + queueReserve per connection, however many connections a hostile party fills.
type queueBudget struct {
	max  int64 // 0 for no bound
	used atomic.Int64
}

// queueReserve is what each client's send queue may hold without drawing on the relay-wide
// budget: one packet of the largest size, so an empty queue always takes a packet and a client
// keeps being served while others hold the whole budget.
const queueReserve = MaxPacketSize

// defaultMaxQueuedBytes is ServerOptions.MaxQueuedBytes' default: 256 queues full at 1 MiB,
// far more than honest traffic queues at once (a bulk transfer to a browser queues about one
// TCP window, 256 KiB).
const defaultMaxQueuedBytes = 256 << 20

// take draws n bytes, or none and reports false when that would pass the bound. A nil budget
// has no bound.
func (b *queueBudget) take(n int) bool {
	if b == nil || n <= 0 {
		return true
	}
	if b.max == 0 {
		b.used.Add(int64(n))
		return true
	}
	for {
		u := b.used.Load()
		if u+int64(n) > b.max {
			return false
		}
		if b.used.CompareAndSwap(u, u+int64(n)) {
			return true
		}
	}
}

// give returns n bytes drawn by take.
func (b *queueBudget) give(n int) { b.add(-n) }

// add draws n bytes whatever the bound (a packet into an empty queue, which its reserve holds).
func (b *queueBudget) add(n int) {
	if b != nil && n != 0 {
		b.used.Add(int64(n))
	}
}

// queued returns the bytes drawn now.
func (b *queueBudget) queued() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

// overReserve is what a queue holding bytes draws from the budget.
func overReserve(bytes int) int { return max(0, bytes-queueReserve) }
