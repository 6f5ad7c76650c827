package magicbind

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"golang.zx2c4.com/wireguard/conn"

	"tsconnect/controlws"
	"tsconnect/derpbind"
	"tsconnect/key"
)

// PacketConn is the UDP socket a Conn owns; *net.UDPConn satisfies it, and tests wrap one
// to drop packets (a path that dies).
type PacketConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	LocalAddr() net.Addr
	Close() error
}

// Options configures a Conn.
type Options struct {
	// PacketConn is the node's one UDP socket (WireGuard, disco and STUN share it). Required;
	// the Conn closes it.
	PacketConn PacketConn
	// Interfaces lists the local addresses to publish with the socket's port when it is
	// bound to all of them; nil means SystemInterfaces.
	Interfaces Interfaces
	// Logf, if non-nil, receives path changes and rare errors.
	Logf func(format string, args ...any)
}

// Timing of path selection.
const (
	// HeartbeatInterval is how often the direct path of an active peer is pinged.
	HeartbeatInterval = 500 * time.Millisecond
	// DirectTimeout is how long a direct path may go without a pong before traffic goes
	// back to the relay: with the tick, the fallback takes at most about 1.75 s.
	DirectTimeout = 1500 * time.Millisecond
	// ProbeInterval is how often an active peer on the relay has its endpoints pinged.
	ProbeInterval = 2 * time.Second
	// ActiveFor is how long after the last data packet sent a peer counts as active.
	ActiveFor = 30 * time.Second
	// pingTimeout is how long a ping waits for its pong.
	pingTimeout = 5 * time.Second
	tick        = 250 * time.Millisecond
	// maxPending bounds the pings awaiting a pong, over all peers.
	maxPending = 4096
	// maxLearned bounds the addresses a peer's pings taught us, per peer.
	maxLearned = 8
	// rxQueueLen bounds the UDP packets waiting for WireGuard; past it the reader waits and
	// the socket's own buffer fills (and drops, as UDP does).
	rxQueueLen = 512
)

// Conn is a node's direct-path layer: its UDP socket, its disco key, the peers' paths, and
// (through Bind) the conn.Bind WireGuard sends on. Endpoints stay peer keys
// (derpbind.Endpoint): each Send goes to the peer's direct address when one answers, else
// through the relay.
type Conn struct {
	pc        PacketConn
	port      uint16
	boundAll  bool // the socket listens on every address
	v4only    bool // an IPv4 socket
	ifs       Interfaces
	logf      func(format string, args ...any)
	discoPriv [32]byte
	discoPub  key.Public

	limUDP   sourceLimiter[netip.AddrPort]
	limRelay sourceLimiter[key.Public]
	// pingLim bounds the pings sent to all peers, unprovenLim the disco messages opened
	// from addresses not yet proven for their peer (ratelimit.go).
	pingLim, unprovenLim *rate.Limiter

	rx   chan received
	done chan struct{} // closed by Close

	mu       sync.Mutex
	closed   bool
	b        *bind
	peers    map[key.Public]*peerState
	byDisco  map[key.Public]*peerState
	byAddr   map[netip.AddrPort]*peerState
	pending  map[TxID]*pendingPing
	stunWait map[[12]byte]stunWaiter
	counters Counters
	// endpoints are this node's, as Discover found them last (for call-me-maybe).
	endpoints []netip.AddrPort
}

// Counters count data (WireGuard) packets by path, and disco messages dropped.
type Counters struct {
	DirectSent, RelaySent, DirectRecv uint64
	// DataDropped counts UDP data packets from addresses no peer is known at.
	DataDropped uint64
	// DiscoDropped counts disco messages refused: over the rate, too big, from unknown
	// keys, not opening, replayed or answering no ping of ours.
	DiscoDropped uint64
	// PingsThrottled counts pings not sent (over PeerPingRate or TotalPingRate) and disco
	// messages dropped unopened from unproven addresses (over UnprovenRate or
	// UnprovenTotalRate).
	PingsThrottled uint64
}

type received struct {
	src key.Public
	pkt []byte
}

type stunWaiter struct {
	to netip.AddrPort
	ch chan netip.AddrPort
}

// New returns a Conn over opts.PacketConn with a new disco key; it reads the socket until Close.
func New(opts Options) (*Conn, error) {
	if opts.PacketConn == nil {
		return nil, errors.New("magicbind: Options.PacketConn is required")
	}
	ua, ok := opts.PacketConn.LocalAddr().(*net.UDPAddr)
	if !ok {
		return nil, fmt.Errorf("magicbind: socket address %v is not UDP", opts.PacketConn.LocalAddr())
	}
	ap := ua.AddrPort()
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	ifs := opts.Interfaces
	if ifs == nil {
		ifs = SystemInterfaces
	}
	priv := key.NewPrivate()
	c := &Conn{
		pc: opts.PacketConn, port: ap.Port(), boundAll: ap.Addr().IsUnspecified(),
		v4only: ap.Addr().Is4(), // an IPv4 socket ("0.0.0.0" included) cannot reach IPv6 endpoints
		ifs:    ifs, logf: logf, discoPriv: priv, discoPub: priv.Public(),
		rx: make(chan received, rxQueueLen), done: make(chan struct{}),
		peers: map[key.Public]*peerState{}, byDisco: map[key.Public]*peerState{},
		byAddr: map[netip.AddrPort]*peerState{}, pending: map[TxID]*pendingPing{},
		stunWait:    map[[12]byte]stunWaiter{},
		pingLim:     rate.NewLimiter(TotalPingRate, TotalPingBurst),
		unprovenLim: rate.NewLimiter(UnprovenTotalRate, UnprovenTotalBurst),
	}
	go c.readUDP()
	go c.loop()
	return c, nil
}

// DiscoKey returns the public disco key, for Hostinfo.DiscoKey.
func (c *Conn) DiscoKey() key.Public { return c.discoPub }

// Port returns the UDP socket's port.
func (c *Conn) Port() uint16 { return c.port }

// Stats returns the counters.
func (c *Conn) Stats() Counters {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counters
}

// Close closes the socket and stops path selection; the Bind then carries only the relay.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.done)
	c.mu.Unlock()
	return c.pc.Close()
}

// SetPeers makes the peers those of a network map: their disco keys and endpoints.
// A peer whose disco key is unchanged keeps its path; one without a disco key (an older
// node) stays on the relay. Endpoints past controlws.MaxEndpoints are ignored.
func (c *Conn) SetPeers(nodes []controlws.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	keep := make(map[key.Public]bool, len(nodes))
	// A disco key two peers claim is nobody's: a node copying another's public disco key
	// could otherwise push it off its direct paths (it cannot open its messages anyway).
	claims := make(map[key.Public]int, len(nodes))
	for _, n := range nodes {
		claims[n.DiscoKey]++
	}
	for _, n := range nodes {
		if n.DiscoKey.IsZero() || n.DiscoKey == c.discoPub || claims[n.DiscoKey] > 1 {
			continue
		}
		keep[n.Key] = true
		p := c.peers[n.Key]
		if p != nil && p.disco != n.DiscoKey {
			c.dropPeerLocked(p)
			p = nil
		}
		if p == nil {
			if other := c.byDisco[n.DiscoKey]; other != nil { // a disco key moved to a new node key (a rotation)
				c.dropPeerLocked(other)
			}
			p = &peerState{key: n.Key, disco: n.DiscoKey, region: n.HomeDERP,
				pingLim:     rate.NewLimiter(PeerPingRate, PeerPingBurst),
				unprovenLim: rate.NewLimiter(UnprovenRate, UnprovenBurst)}
			c.peers[n.Key] = p
			c.byDisco[n.DiscoKey] = p
		}
		p.region = n.HomeDERP
		eps := make([]netip.AddrPort, 0, len(n.Endpoints))
		for _, ep := range n.Endpoints {
			if ep.IsValid() && ep.Port() != 0 && !ep.Addr().IsUnspecified() {
				eps = append(eps, netip.AddrPortFrom(ep.Addr().Unmap().WithZone(""), ep.Port()))
			}
		}
		p.endpoints = capEndpoints(eps, controlws.MaxEndpoints)
	}
	for k, p := range c.peers {
		if !keep[k] {
			c.dropPeerLocked(p)
		}
	}
}

func (c *Conn) dropPeerLocked(p *peerState) {
	delete(c.peers, p.key)
	delete(c.byDisco, p.disco)
	for a, q := range c.byAddr {
		if q == p {
			delete(c.byAddr, a)
		}
	}
}

// readUDP takes packets from the socket until it is closed: STUN answers, disco messages
// and WireGuard packets from known peers' addresses.
func (c *Conn) readUDP() {
	buf := make([]byte, 65536)
	for {
		n, src, err := c.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				c.logf("magicbind: UDP receive failed, direct paths are off: %v", err)
			}
			return
		}
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		pkt := buf[:n]
		switch {
		case isSTUN(pkt):
			c.handleSTUN(pkt, src)
		case isDisco(pkt):
			c.handleDisco(pkt, src, key.Public{})
		default:
			c.mu.Lock()
			p := c.byAddr[src]
			if p == nil {
				c.counters.DataDropped++
				c.mu.Unlock()
				continue
			}
			c.counters.DirectRecv++
			p.lastRecv = time.Now()
			k := p.key
			c.mu.Unlock()
			// While WireGuard is behind this waits, and the socket's buffer drops instead.
			select {
			case c.rx <- received{k, append([]byte(nil), pkt...)}:
			case <-c.done:
				return
			}
		}
	}
}

// Bind returns the conn.Bind WireGuard uses: relay for peers without a direct path (and
// for disco messages to them), the UDP socket for the others. Call it once.
func (c *Conn) Bind(relay derpbind.Relay, logf func(format string, args ...any)) conn.Bind {
	b := &bind{c: c, relay: relay}
	b.derp = derpbind.New(&discoRelay{Relay: relay, c: c}, logf)
	c.mu.Lock()
	c.b = b
	c.mu.Unlock()
	return b
}

// discoRelay hands disco messages arriving through the relay to the Conn, and the rest
// (WireGuard) to derpbind.
type discoRelay struct {
	derpbind.Relay
	c *Conn
}

func (r *discoRelay) Recv() (key.Public, []byte, error) {
	for {
		src, pkt, err := r.Relay.Recv()
		if err != nil {
			return src, pkt, err
		}
		if !isDisco(pkt) {
			r.c.noteRecv(src)
			return src, pkt, err
		}
		r.c.handleDisco(pkt, netip.AddrPort{}, src)
	}
}

// bind is the conn.Bind of a Conn.
type bind struct {
	c     *Conn
	relay derpbind.Relay
	derp  *derpbind.Bind

	mu   sync.Mutex
	open bool
	done chan struct{}
}

var _ conn.Bind = (*bind)(nil)

// Open opens the relay side and adds a ReceiveFunc for UDP; the port is the socket's.
func (b *bind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	fns, _, err := b.derp.Open(port)
	if err != nil {
		return nil, 0, err
	}
	b.mu.Lock()
	b.open = true
	b.done = make(chan struct{})
	done := b.done
	b.mu.Unlock()
	return append(fns, b.receiveUDP(done)), b.c.port, nil
}

func (b *bind) Close() error {
	b.mu.Lock()
	if b.open {
		b.open = false
		close(b.done)
	}
	b.mu.Unlock()
	return b.derp.Close()
}

func (b *bind) SetMark(uint32) error { return nil }
func (b *bind) BatchSize() int       { return b.derp.BatchSize() }
func (b *bind) ParseEndpoint(s string) (conn.Endpoint, error) {
	return b.derp.ParseEndpoint(s)
}

// Send sends to the peer's direct address while it answers, else through the relay. It
// never blocks on anything but the socket.
func (b *bind) Send(bufs [][]byte, ep conn.Endpoint) error {
	dst, ok := ep.(*derpbind.Endpoint)
	if !ok {
		return conn.ErrWrongEndpointType
	}
	to := b.c.sendPath(dst.Key(), len(bufs))
	if to.IsValid() {
		var err error
		for _, buf := range bufs {
			if _, err = b.c.pc.WriteToUDPAddrPort(buf, to); err != nil {
				break
			}
		}
		if err == nil {
			return nil
		}
		// The socket refused (closed, or no route): the relay still carries it.
	}
	return b.derp.Send(bufs, ep)
}

func (b *bind) receiveUDP(done chan struct{}) conn.ReceiveFunc {
	return func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		select {
		case r := <-b.c.rx:
			n := 0
			for { // a batch of what is queued already
				sizes[n] = copy(bufs[n], r.pkt)
				eps[n] = b.derp.Endpoint(r.src)
				n++
				if n == len(bufs) {
					return n, nil
				}
				select {
				case r = <-b.c.rx:
				default:
					return n, nil
				}
			}
		case <-done:
			return 0, net.ErrClosed
		case <-b.c.done:
			<-done // the socket is gone: wait for the Bind to close
			return 0, net.ErrClosed
		}
	}
}

// noteRecv notes a data packet from k through the relay: the peer is active.
func (c *Conn) noteRecv(k key.Public) {
	now := time.Now()
	c.mu.Lock()
	if p := c.peers[k]; p != nil {
		p.lastRecv = now
	}
	c.mu.Unlock()
}

// sendPath notes n data packets for k and returns its direct address, invalid for the relay.
func (c *Conn) sendPath(k key.Public, n int) netip.AddrPort {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.peers[k]
	if p == nil || c.closed {
		c.counters.RelaySent += uint64(n)
		return netip.AddrPort{}
	}
	p.lastSend = now
	if p.best.IsValid() {
		c.counters.DirectSent += uint64(n)
	} else {
		c.counters.RelaySent += uint64(n)
	}
	return p.best
}
