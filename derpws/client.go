package derpws

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"tsconnect/key"
)

// ClientOptions configures a Client. A nil *ClientOptions means defaults.
type ClientOptions struct {
	// Logf, if non-nil, receives log lines. Private keys are never logged.
	Logf func(format string, args ...any)
	// UseWebSocket selects the WebSocket transport on native builds; the default there is the
	// HTTP upgrade. In the browser (GOOS=js) the WebSocket is the only transport.
	UseWebSocket bool
	// OnPeerGone, if non-nil, is called when the relay reports that a peer left
	// (PeerGoneDisconnected) or is not connected to it (PeerGoneNotHere).
	OnPeerGone func(peer key.Public, reason byte)
	// OnHealth, if non-nil, is called with the relay's Health text or a local description of a
	// connection problem; "" means healthy again.
	OnHealth func(problem string)
	// OnConnect, if non-nil, is called after each successful handshake with the relay.
	OnConnect func()
	// MeshKey is the region's shared mesh key (hex). Only a relay meshing with its peers sets it;
	// the peer then admits the connection as a mesh peer.
	MeshKey string
	// Resolver looks the relay URL's host name up natively; nil means net.DefaultResolver.
	// A name of several addresses (control replicas, each with its relay) is dialled at each
	// in turn, as control is (internal/dialaddrs). The js build ignores it: the browser resolves.
	Resolver *net.Resolver
	// DialAddr, if set, is the address (ip:port) the client connects to instead of the URL's
	// host, which still names the relay for TLS and the Host header: a relay meshing with
	// one of several replicas that share a public name. The js build ignores it.
	DialAddr string
}

// ClientCounters are a client's own counters.
type ClientCounters struct {
	// PacketsSent counts packets written to the relay; PacketsReceived packets read from it.
	PacketsSent, PacketsReceived uint64
	// SendDrops counts packets dropped before reaching the relay: the send queue was full,
	// they waited too long while disconnected, or the connection failed under them.
	SendDrops uint64
	// RecvDrops counts received packets dropped because Recv was not called fast enough.
	RecvDrops uint64
	// Connects counts successful handshakes.
	Connects uint64
}

// Queue sizes of a client.
const (
	// clientSendQueue holds packets for the relay, including while reconnecting.
	clientSendQueue = 512
	// clientRecvQueue holds packets read from the relay until Recv takes them.
	clientRecvQueue = 512
	// hookQueue holds pending hook calls.
	hookQueue = 64
)

// Client is a connection to one DERP relay, kept up until Close. It is safe for concurrent use.
type Client struct {
	priv key.Private
	pub  key.Public
	url  string
	opts ClientOptions
	logf func(format string, args ...any)

	ctx    context.Context // done at Close
	cancel context.CancelFunc
	start  sync.Once
	closed atomic.Bool
	up     atomic.Bool // connected to the relay (Send stamps packets while not)

	sendq chan packet   // packets for the relay; the oldest is dropped when full
	recvq chan inPacket // packets from the relay
	hooks chan func()   // hook calls, run in order on their own goroutine
	runc  chan struct{} // closed when the connection loop has ended
	mu    sync.Mutex    // guards nc
	nc    net.Conn      // the current connection, if any

	preferred atomic.Bool   // this relay is the client's home (NotePreferred)
	prefc     chan struct{} // signals a change of preferred to the writer
	watcher   meshWatcher   // non-nil on a relay's mesh client: it sends WatchConns

	packetsSent, packetsRecv atomic.Uint64
	sendDrops, recvDrops     atomic.Uint64
	connects                 atomic.Uint64
}

// inPacket is a packet read from the relay.
type inPacket struct {
	src key.Public
	pkt []byte
}

// NewClient returns a client of the relay at url ("http(s)://host:port/derp"); it connects lazily and reconnects
// with jittered backoff until Close, honouring Restarting frames.
func NewClient(priv key.Private, url string, opts *ClientOptions) *Client {
	c := &Client{
		priv:  priv,
		pub:   priv.Public(),
		url:   url,
		sendq: make(chan packet, clientSendQueue),
		recvq: make(chan inPacket, clientRecvQueue),
		hooks: make(chan func(), hookQueue),
		runc:  make(chan struct{}),
		prefc: make(chan struct{}, 1),
	}
	c.preferred.Store(true)
	if opts != nil {
		c.opts = *opts
	}
	c.logf = c.opts.Logf
	if c.logf == nil {
		c.logf = func(string, ...any) {}
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// PublicKey returns the client's public key, its identity on the relay.
func (c *Client) PublicKey() key.Public { return c.pub }

// Start begins connecting now rather than at the first Send or Recv.
func (c *Client) Start() { c.ensureStarted() }

// ensureStarted starts the connection loop on first use.
func (c *Client) ensureStarted() {
	c.start.Do(func() {
		go c.runHooks()
		go c.run()
	})
}

// Send enqueues a packet to dst and returns at once: it never waits on the network (a bounded queue, dropping the
// oldest when full; while disconnected packets wait briefly in that same queue). It errors only after Close.
// Send copies pkt; the caller may reuse it at once.
func (c *Client) Send(dst key.Public, pkt []byte) error {
	if c.closed.Load() {
		return net.ErrClosed
	}
	if len(pkt) > MaxPacketSize {
		return fmt.Errorf("derpws: packet of %d bytes is over the relay's limit of %d", len(pkt), MaxPacketSize)
	}
	c.ensureStarted()
	pb := getBuf(len(pkt))
	copy(pb.b, pkt)
	p := packet{peer: dst, buf: pb}
	if !c.up.Load() {
		p.queued = time.Now().UnixNano()
	}
	c.enqueue(p)
	return nil
}

// enqueue queues p for the relay, dropping the oldest queued packet when full.
func (c *Client) enqueue(p packet) {
	for {
		select {
		case c.sendq <- p:
			return
		default:
		}
		select {
		case old := <-c.sendq:
			c.sendDrops.Add(1)
			putBuf(old.buf)
		default:
		}
	}
}

// SetPreferred says whether this relay is the client's home; the relay learns it from a
// NotePreferred frame at once and on every reconnect. A new client counts as preferred.
func (c *Client) SetPreferred(home bool) {
	if c.preferred.Swap(home) != home {
		select {
		case c.prefc <- struct{}{}:
		default:
		}
	}
}

// Recv blocks until a packet arrives and returns its authenticated source; net.ErrClosed after Close.
func (c *Client) Recv() (src key.Public, pkt []byte, err error) {
	if c.closed.Load() {
		return key.Public{}, nil, net.ErrClosed
	}
	c.ensureStarted()
	select {
	case p := <-c.recvq:
		return p.src, p.pkt, nil
	case <-c.ctx.Done():
		return key.Public{}, nil, net.ErrClosed
	}
}

// Close ends the connection and the reconnect loop and waits for them. Recv then returns
// net.ErrClosed and Send an error. Hooks already queued may still run.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.cancel()
	c.mu.Lock()
	if c.nc != nil {
		c.nc.Close()
	}
	c.mu.Unlock()
	started := true
	c.start.Do(func() { started = false })
	if started {
		<-c.runc
	}
	return nil
}

// Stats returns the client's counters.
func (c *Client) Stats() ClientCounters {
	return ClientCounters{
		PacketsSent:     c.packetsSent.Load(),
		PacketsReceived: c.packetsRecv.Load(),
		SendDrops:       c.sendDrops.Load(),
		RecvDrops:       c.recvDrops.Load(),
		Connects:        c.connects.Load(),
	}
}

// hook queues f to run on the hook goroutine; it never blocks the caller.
func (c *Client) hook(f func()) {
	select {
	case c.hooks <- f:
	default:
		c.logf("derpws: hook queue full; a notification was dropped")
	}
}

// runHooks runs hook calls in order until Close.
func (c *Client) runHooks() {
	for {
		select {
		case f := <-c.hooks:
			f()
		case <-c.ctx.Done():
			return
		}
	}
}

// health reports a problem ("" for none) to OnHealth.
func (c *Client) health(problem string) {
	if f := c.opts.OnHealth; f != nil {
		c.hook(func() { f(problem) })
	}
}

// meshWatcher receives the client list of a peer relay on a relay's mesh client. Its methods
// run on the connection's reader goroutine and must not block.
type meshWatcher interface {
	present(k key.Public) // k connected to the peer relay
	gone(k key.Public)    // k left the peer relay
	reset()               // the connection to the peer relay ended: forget all its clients
}
