// Package derpbind is a WireGuard conn.Bind whose endpoints are peer public keys: packets
// travel through a DERP relay that forwards them by key instead of over UDP.
package derpbind

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"golang.zx2c4.com/wireguard/conn"

	"tsconnect/key"
)

const (
	// batchSize is how many packets one receive call may return; Send takes batches of any length.
	batchSize = 32
	// rxQueueLen is how many received packets wait for WireGuard before the reader stops
	// taking more from the relay (the relay then drops, as DERP does for a slow client).
	rxQueueLen = 256
	// maxCachedEndpoints bounds the key → *Endpoint cache used on receive.
	maxCachedEndpoints = 4096
)

// Bind is a conn.Bind over a Relay. Against conn.Bind's contract:
//
//   - Open starts delivery and returns one ReceiveFunc; the port means nothing here and is
//     echoed back. Open on an open Bind returns conn.ErrBindAlreadyOpen; Open after the
//     Relay has failed or closed returns that error.
//   - Close stops delivery: every ReceiveFunc returned by earlier Opens returns
//     net.ErrClosed, and packets arriving while closed are dropped. Close may be called
//     any number of times, and a later Open works again on the same Relay.
//   - Send passes each packet to Relay.Send, which never blocks, so Send never waits on
//     anything that could need JavaScript to run. Send on a closed Bind returns net.ErrClosed.
//   - BatchSize is 32; SetMark does nothing; ParseEndpoint takes a 64-hex-digit public key.
//
// The Bind never closes the Relay. Its single reader goroutine (started by the first Open)
// ends when Relay.Recv returns an error, so close the Relay to release it.
type Bind struct {
	relay Relay
	logf  func(format string, args ...any)

	startOnce sync.Once
	rx        chan received // filled by the reader, drained by ReceiveFuncs

	readerDone chan struct{} // closed when the reader ends; readerErr is then set
	readerErr  error

	mu   sync.Mutex
	open bool
	done chan struct{} // closed by Close; a new one per Open

	epMu sync.Mutex
	eps  map[key.Public]*Endpoint
}

type received struct {
	src key.Public
	pkt []byte
}

var _ conn.Bind = (*Bind)(nil)

// New returns a closed Bind that sends and receives through relay. logf, if non-nil,
// receives the Bind's rare log lines.
func New(relay Relay, logf func(format string, args ...any)) *Bind {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Bind{
		relay:      relay,
		logf:       logf,
		rx:         make(chan received, rxQueueLen),
		readerDone: make(chan struct{}),
		eps:        make(map[key.Public]*Endpoint),
	}
}

// Open implements conn.Bind.
func (b *Bind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	b.startOnce.Do(func() { go b.read() })
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open {
		return nil, 0, conn.ErrBindAlreadyOpen
	}
	select {
	case <-b.readerDone:
		return nil, 0, b.readerErr
	default:
	}
	b.open = true
	b.done = make(chan struct{})
	return []conn.ReceiveFunc{b.receiveFunc(b.done)}, port, nil
}

// Close implements conn.Bind.
func (b *Bind) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open {
		b.open = false
		close(b.done)
	}
	return nil
}

// SetMark does nothing: there is no socket to mark.
func (b *Bind) SetMark(mark uint32) error { return nil }

// BatchSize implements conn.Bind.
func (b *Bind) BatchSize() int { return batchSize }

// ParseEndpoint parses a peer public key in its 64-hex-digit form.
func (b *Bind) ParseEndpoint(s string) (conn.Endpoint, error) {
	k, err := key.ParsePublic(s)
	if err != nil {
		return nil, fmt.Errorf("derpbind: endpoint must be a peer public key: %w", err)
	}
	return b.endpoint(k), nil
}

// Send implements conn.Bind. It never blocks.
func (b *Bind) Send(bufs [][]byte, ep conn.Endpoint) error {
	dst, ok := ep.(*Endpoint)
	if !ok {
		return conn.ErrWrongEndpointType
	}
	b.mu.Lock()
	open := b.open
	b.mu.Unlock()
	if !open {
		return net.ErrClosed
	}
	for _, buf := range bufs {
		if err := b.relay.Send(dst.key, buf); err != nil {
			return fmt.Errorf("derpbind: send to %s: %w", dst.key.ShortString(), err)
		}
	}
	return nil
}

// read moves packets from the relay to rx for as long as the relay delivers them.
// While the Bind is closed it drops them; while rx is full it waits, so the relay's own
// bounded queue is what drops under load.
func (b *Bind) read() {
	for {
		src, pkt, err := b.relay.Recv()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				b.readerErr = net.ErrClosed
			} else {
				b.logf("derpbind: relay receive failed, no more packets: %v", err)
				b.readerErr = fmt.Errorf("derpbind: relay receive: %w", err)
			}
			close(b.readerDone)
			return
		}
		b.mu.Lock()
		open, done := b.open, b.done
		b.mu.Unlock()
		if !open {
			continue
		}
		select {
		case b.rx <- received{src, pkt}:
		case <-done:
		}
	}
}

// receiveFunc returns the ReceiveFunc of one Open; it fails with net.ErrClosed once done is closed.
func (b *Bind) receiveFunc(done chan struct{}) conn.ReceiveFunc {
	return func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		select {
		case <-done:
			return 0, net.ErrClosed
		default:
		}
		var r received
		select {
		case r = <-b.rx:
		case <-done:
			return 0, net.ErrClosed
		case <-b.readerDone:
			return 0, b.readerErr
		}
		n := 0
		for {
			sizes[n] = copy(bufs[n], r.pkt)
			eps[n] = b.endpoint(r.src)
			n++
			if n == len(bufs) {
				return n, nil
			}
			select {
			case r = <-b.rx:
			default:
				return n, nil
			}
		}
	}
}

// Endpoint returns the shared *Endpoint for peer k, the one this Bind's receives name, so
// another Bind that carries the same peers (magicbind) hands WireGuard the same endpoint.
func (b *Bind) Endpoint(k key.Public) *Endpoint { return b.endpoint(k) }

// endpoint returns the shared *Endpoint for k, so receiving does not allocate one per packet.
func (b *Bind) endpoint(k key.Public) *Endpoint {
	b.epMu.Lock()
	defer b.epMu.Unlock()
	ep := b.eps[k]
	if ep == nil {
		if len(b.eps) >= maxCachedEndpoints {
			clear(b.eps)
		}
		ep = NewEndpoint(k)
		b.eps[k] = ep
	}
	return ep
}
