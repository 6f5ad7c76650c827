package derpws

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"tsconnect/key"
)

// MultiOptions configures a Multi. A nil *MultiOptions means defaults.
type MultiOptions struct {
	// Logf, if non-nil, receives log lines.
	Logf func(format string, args ...any)
	// UseWebSocket selects the WebSocket transport on native builds (see ClientOptions).
	UseWebSocket bool
	// OnHomeConnect, if non-nil, is called after each handshake with the home relay.
	OnHomeConnect func()
	// IdleTimeout is how long a connection to a region other than home stays open with no
	// packet sent or received through it; 0 means 60 s.
	IdleTimeout time.Duration
	// Resolver looks the relays' host names up natively (ClientOptions.Resolver); nil means
	// net.DefaultResolver.
	Resolver *net.Resolver
}

// Multi is a DERP client across regions, shaped like a Client for a WireGuard Bind (Send,
// Recv): it keeps a connection to the home region's relay, announced with NotePreferred, and
// opens a connection to another region when a peer homed there is sent to, keeping it only
// while packets flow: connections idle for IdleTimeout are closed. A packet to a peer whose region is unknown goes through home,
// and a packet received from another region teaches that peer's region. Safe for concurrent use.
type Multi struct {
	priv key.Private
	opts MultiOptions
	logf func(format string, args ...any)
	recv chan inPacket // merged packets of every connection

	mu      sync.Mutex
	closed  bool
	started bool // Start was called: the home connection is kept open
	dm      *Map
	home    int
	conns   map[int]*regionConn
	regions map[key.Public]int // peer → its home region
	stopc   chan struct{}
	wg      sync.WaitGroup
}

// regionConn is the connection to one region's relay.
type regionConn struct {
	region int
	url    string // the relay it was opened to (a new map may name another)
	c      *Client
	used   atomic.Int64 // unix nanos of the last packet through it
}

// NewMulti returns a Multi homed in region home of dm; it connects lazily. opts may be nil.
func NewMulti(priv key.Private, dm *Map, home int, opts *MultiOptions) *Multi {
	m := &Multi{
		priv:    priv,
		recv:    make(chan inPacket, clientRecvQueue),
		dm:      dm,
		home:    home,
		conns:   make(map[int]*regionConn),
		regions: make(map[key.Public]int),
		stopc:   make(chan struct{}),
	}
	if opts != nil {
		m.opts = *opts
	}
	if m.opts.IdleTimeout <= 0 {
		m.opts.IdleTimeout = 60 * time.Second
	}
	m.logf = m.opts.Logf
	if m.logf == nil {
		m.logf = func(string, ...any) {}
	}
	m.wg.Add(1)
	go m.janitor()
	return m
}

// PublicKey returns the client's key.
func (m *Multi) PublicKey() key.Public { return m.priv.Public() }

// Home returns the home region.
func (m *Multi) Home() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.home
}

// HomeUp says whether the connection to the home relay is up (handshake done).
func (m *Multi) HomeUp() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	rc := m.conns[m.home]
	return rc != nil && rc.c.up.Load()
}

// Start connects to the home relay now rather than at the first packet.
func (m *Multi) Start() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.started = true
	m.connLocked(m.home)
}

// SetMap replaces the DERP map; connections to regions no longer in it, or whose relay is
// now another URL, are closed. A started Multi whose home relay changed URL connects to the
// new one at once: a replica of control names its own relay as region 1, so a node that
// moved to another replica moves to that replica's relay in the same region.
func (m *Multi) SetMap(dm *Map) {
	m.mu.Lock()
	m.dm = dm
	var drop []*regionConn
	rehome := false
	for id, rc := range m.conns {
		if u, ok := regionURL(dm, id); !ok || u != rc.url {
			drop = append(drop, rc)
			delete(m.conns, id)
			if ok && id == m.home && m.started {
				rehome = true
				m.logf("derpws: home region %d is now %s (was %s): reconnecting", id, u, rc.url)
			}
		}
	}
	if rehome {
		m.connLocked(m.home)
	}
	m.mu.Unlock()
	for _, rc := range drop {
		rc.c.Close()
	}
}

// SetHome makes region the home: its relay is told NotePreferred(true) and the old home's
// NotePreferred(false); the old home's connection then stays only while it is used.
func (m *Multi) SetHome(region int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if region == m.home || m.closed {
		return
	}
	if old := m.conns[m.home]; old != nil {
		old.c.SetPreferred(false)
		old.used.Store(time.Now().UnixNano())
	}
	m.home = region
	if rc := m.connLocked(region); rc != nil {
		rc.c.SetPreferred(true)
	}
}

// SetPeerRegions records the home regions of peers (from the network map); a region of 0 or
// one without relays means "unknown", and packets to that peer go through home.
func (m *Multi) SetPeerRegions(regions map[key.Public]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.regions = make(map[key.Public]int, len(regions))
	for k, r := range regions {
		if r != 0 {
			m.regions[k] = r
		}
	}
}

// Send queues pkt for dst on the connection of dst's region; it never blocks (see Client.Send).
func (m *Multi) Send(dst key.Public, pkt []byte) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return net.ErrClosed
	}
	region, ok := m.regions[dst]
	if !ok || m.dm == nil || m.dm.Regions[region] == nil {
		region = m.home
	}
	rc := m.connLocked(region)
	m.mu.Unlock()
	if rc == nil {
		return fmt.Errorf("derpws: no relay for region %d in the DERP map", region)
	}
	rc.used.Store(time.Now().UnixNano())
	return rc.c.Send(dst, pkt)
}

// Recv returns the next packet from any region; net.ErrClosed after Close.
func (m *Multi) Recv() (key.Public, []byte, error) {
	select {
	case p := <-m.recv:
		return p.src, p.pkt, nil
	case <-m.stopc:
		return key.Public{}, nil, net.ErrClosed
	}
}

// Stats returns the home connection's counters.
func (m *Multi) Stats() ClientCounters {
	m.mu.Lock()
	rc := m.conns[m.home]
	m.mu.Unlock()
	if rc == nil {
		return ClientCounters{}
	}
	return rc.c.Stats()
}

// Regions returns the regions with an open connection.
func (m *Multi) Regions() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]int, 0, len(m.conns))
	for id := range m.conns {
		ids = append(ids, id)
	}
	return ids
}

// Close closes every connection; Recv then returns net.ErrClosed.
func (m *Multi) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	close(m.stopc)
	conns := m.conns
	m.conns = nil
	m.mu.Unlock()
	for _, rc := range conns {
		rc.c.Close()
	}
	m.wg.Wait()
	return nil
}

// connLocked returns the connection to region, opening it if needed; nil if the map has no
// relay there.
func (m *Multi) connLocked(region int) *regionConn {
	if m.closed {
		return nil
	}
	if rc := m.conns[region]; rc != nil {
		return rc
	}
	if m.dm == nil {
		return nil
	}
	u, ok := regionURL(m.dm, region)
	if !ok {
		return nil
	}
	opts := &ClientOptions{Logf: m.opts.Logf, UseWebSocket: m.opts.UseWebSocket, Resolver: m.opts.Resolver}
	if region == m.home && m.opts.OnHomeConnect != nil {
		f := m.opts.OnHomeConnect
		opts.OnConnect = func() {
			if m.Home() == region {
				f()
			}
		}
	}
	c := NewClient(m.priv, u, opts)
	c.SetPreferred(region == m.home)
	rc := &regionConn{region: region, url: u, c: c}
	rc.used.Store(time.Now().UnixNano())
	m.conns[region] = rc
	if region != m.home {
		m.logf("derpws: connecting to region %d for peers homed there", region)
	}
	c.ensureStarted()
	m.wg.Add(1)
	go m.pump(rc)
	return rc
}

// pump moves rc's packets to the merged queue and learns senders' regions.
func (m *Multi) pump(rc *regionConn) {
	defer m.wg.Done()
	for {
		src, pkt, err := rc.c.Recv()
		if err != nil {
			return
		}
		rc.used.Store(time.Now().UnixNano())
		if rc.region != m.Home() {
			m.mu.Lock()
			if _, ok := m.regions[src]; !ok {
				m.regions[src] = rc.region // reply the way it came
			}
			m.mu.Unlock()
		}
		select {
		case m.recv <- inPacket{src, pkt}:
		case <-m.stopc:
			return
		}
	}
}

// janitor closes connections to other regions that nobody used for IdleTimeout.
func (m *Multi) janitor() {
	defer m.wg.Done()
	t := time.NewTicker(m.opts.IdleTimeout / 4)
	defer t.Stop()
	for {
		select {
		case <-m.stopc:
			return
		case <-t.C:
		}
		m.closeIdle(time.Now())
	}
}

// closeIdle closes non-home connections idle since before now-IdleTimeout.
func (m *Multi) closeIdle(now time.Time) {
	m.mu.Lock()
	var drop []*regionConn
	for id, rc := range m.conns {
		if id != m.home && now.Sub(time.Unix(0, rc.used.Load())) >= m.opts.IdleTimeout {
			drop = append(drop, rc)
			delete(m.conns, id)
		}
	}
	m.mu.Unlock()
	for _, rc := range drop {
		m.logf("derpws: closing the idle connection to region %d", rc.region)
		rc.c.Close()
	}
}

// regionURL returns the URL of region's first relay in dm; false if dm has none there.
func regionURL(dm *Map, region int) (string, bool) {
	if dm == nil {
		return "", false
	}
	r := dm.Regions[region]
	if r == nil || len(r.Nodes) == 0 {
		return "", false
	}
	return NodeURL(r.Nodes[0]), true
}
