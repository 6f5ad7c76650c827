package engine

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/conn"

	"tsconnect/key"
)

// Per-peer bounds on WireGuard handshake messages (initiation, response, cookie reply)
// processed: each costs Curve25519 work in wireguard-go. Its own limiter (20/s, burst 5,
// keyed by the sender's IP address, only while the handshake queue is over 1/8 full) puts
// every DERP sender in one bucket (a DERP endpoint has no IP: DstIP is the zero address),
// so under load one peer's flood would starve every other peer's handshakes. These bounds
// apply before that, by the DERP-authenticated sender key.
const (
	// HandshakeRate is how many handshake messages per second a peer may have processed.
	HandshakeRate = 5
	// HandshakeBurst is how many it may send at once.
	HandshakeBurst = 10
)

// WireGuard message types (the first byte, little-endian uint32).
const (
	msgInitiation  = 1
	msgResponse    = 2
	msgCookieReply = 3
)

// keyed is an endpoint that names its sender by key, as derpbind's does.
type keyed interface{ Key() key.Public }

// handshakeLimiter drops, before wireguard-go sees them, handshake messages from senders
// that are not peers (they cannot complete one anyway) and those over a peer's bucket.
type handshakeLimiter struct {
	now func() time.Time

	mu      sync.Mutex
	buckets map[key.Public]*bucket // exactly the configured peers

	dropped atomic.Uint64
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newHandshakeLimiter() *handshakeLimiter {
	return &handshakeLimiter{now: time.Now, buckets: map[key.Public]*bucket{}}
}

// setPeers makes the limiter's peer set peers, keeping the buckets of those that stay.
func (l *handshakeLimiter) setPeers(peers map[key.Public][]netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range l.buckets {
		if _, ok := peers[k]; !ok {
			delete(l.buckets, k)
		}
	}
	for k := range peers {
		if l.buckets[k] == nil {
			l.buckets[k] = &bucket{tokens: HandshakeBurst, last: l.now()}
		}
	}
}

// allow reports whether a handshake message from k may be processed now.
func (l *handshakeLimiter) allow(k key.Public) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[k]
	if b == nil {
		return false
	}
	now := l.now()
	b.tokens = min(HandshakeBurst, b.tokens+now.Sub(b.last).Seconds()*HandshakeRate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// filter blanks (size 0, which wireguard-go skips) the handshake messages of a received
// batch that may not be processed.
func (l *handshakeLimiter) filter(bufs [][]byte, sizes []int, eps []conn.Endpoint, n int) {
	for i := range n {
		if sizes[i] < 4 {
			continue
		}
		switch binary.LittleEndian.Uint32(bufs[i][:4]) {
		case msgInitiation, msgResponse, msgCookieReply:
		default:
			continue
		}
		ke, ok := eps[i].(keyed)
		if !ok {
			continue // not a DERP endpoint: wireguard-go's own limiter keys it by address
		}
		if !l.allow(ke.Key()) {
			sizes[i] = 0
			l.dropped.Add(1)
		}
	}
}

// limitedBind is a conn.Bind whose receive functions pass through a handshakeLimiter.
type limitedBind struct {
	conn.Bind
	l *handshakeLimiter
}

func (b *limitedBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	fns, p, err := b.Bind.Open(port)
	if err != nil {
		return nil, 0, err
	}
	out := make([]conn.ReceiveFunc, len(fns))
	for i, fn := range fns {
		out[i] = func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
			n, err := fn(bufs, sizes, eps)
			b.l.filter(bufs, sizes, eps, n)
			return n, err
		}
	}
	return out, p, nil
}

// HandshakesDropped returns how many handshake messages were dropped so far: from senders
// that are not peers, or over a peer's HandshakeRate.
func (e *Engine) HandshakesDropped() uint64 { return e.hs.dropped.Load() }
