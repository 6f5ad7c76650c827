// Package memrelay is an in-memory stand-in for a DERP relay, for tests: a Hub forwards
// packets between its clients by public key, and each client satisfies derpbind.Relay.
package memrelay

import (
	"net"
	"sync"

	"tsconnect/derpbind"
	"tsconnect/key"
)

// DefaultQueueLen is each client's receive queue length when Hub.QueueLen is zero.
const DefaultQueueLen = 1024

// Hub routes packets between its clients by key. The zero Hub is ready to use.
type Hub struct {
	// QueueLen bounds each client's receive queue; when it is full the oldest packet is
	// dropped. Zero means DefaultQueueLen.
	QueueLen int

	mu      sync.Mutex
	clients map[key.Public]*Client
	dropped uint64
}

// Client is one node's connection to a Hub. It satisfies derpbind.Relay.
type Client struct {
	hub *Hub
	key key.Public

	mu     sync.Mutex
	queue  [][]byte // ring of received packets
	srcs   []key.Public
	head   int
	n      int
	closed bool
	wake   chan struct{} // capacity 1: "the queue changed"
	done   chan struct{} // closed by close
}

var _ derpbind.Relay = (*Client)(nil)

// Client connects k to the hub. As with DERP, a newer client for the same key replaces
// (and closes) the older one.
func (h *Hub) Client(k key.Public) *Client {
	qlen := h.QueueLen
	if qlen <= 0 {
		qlen = DefaultQueueLen
	}
	c := &Client{
		hub:   h,
		key:   k,
		queue: make([][]byte, qlen),
		srcs:  make([]key.Public, qlen),
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	h.mu.Lock()
	if h.clients == nil {
		h.clients = make(map[key.Public]*Client)
	}
	old := h.clients[k]
	h.clients[k] = c
	h.mu.Unlock()
	if old != nil {
		old.close()
	}
	return c
}

// Dropped reports how many packets the hub has dropped: to absent keys or from full queues.
func (h *Hub) Dropped() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dropped
}

func (h *Hub) countDrop() {
	h.mu.Lock()
	h.dropped++
	h.mu.Unlock()
}

// Key returns the client's public key.
func (c *Client) Key() key.Public { return c.key }

// Send copies pkt into dst's queue and returns at once. A packet for an absent key is
// dropped without error; Send on a closed client returns net.ErrClosed.
func (c *Client) Send(dst key.Public, pkt []byte) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return net.ErrClosed
	}
	c.hub.mu.Lock()
	d := c.hub.clients[dst]
	c.hub.mu.Unlock()
	if d == nil || !d.enqueue(c.key, append([]byte(nil), pkt...)) {
		c.hub.countDrop()
	}
	return nil
}

// enqueue adds pkt, dropping the oldest packet when full. It reports false if c is closed
// or a packet was dropped.
func (c *Client) enqueue(src key.Public, pkt []byte) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	ok := true
	if c.n == len(c.queue) {
		c.queue[c.head] = nil
		c.head = (c.head + 1) % len(c.queue)
		c.n--
		ok = false
	}
	i := (c.head + c.n) % len(c.queue)
	c.queue[i], c.srcs[i] = pkt, src
	c.n++
	c.mu.Unlock()
	c.signal()
	return ok
}

func (c *Client) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Recv blocks until a packet arrives and returns it with its sender's key. After Close,
// it returns net.ErrClosed.
func (c *Client) Recv() (key.Public, []byte, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return key.Public{}, nil, net.ErrClosed
		}
		if c.n > 0 {
			pkt, src := c.queue[c.head], c.srcs[c.head]
			c.queue[c.head] = nil
			c.head = (c.head + 1) % len(c.queue)
			c.n--
			more := c.n > 0
			c.mu.Unlock()
			if more {
				c.signal() // pass the wake-up on to any other waiting Recv
			}
			return src, pkt, nil
		}
		c.mu.Unlock()
		select {
		case <-c.wake:
		case <-c.done:
		}
	}
}

// Close disconnects the client from the hub and makes Recv return net.ErrClosed.
func (c *Client) Close() error {
	c.hub.mu.Lock()
	if c.hub.clients[c.key] == c {
		delete(c.hub.clients, c.key)
	}
	c.hub.mu.Unlock()
	c.close()
	return nil
}

func (c *Client) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		c.n = 0
		clear(c.queue)
		close(c.done)
	}
}
