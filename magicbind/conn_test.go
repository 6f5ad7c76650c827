package magicbind

import (
	"context"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"tsconnect/controlws"
	"tsconnect/derpbind"
	"tsconnect/derpbind/memrelay"
	"tsconnect/derpws"
	"tsconnect/engine"
	"tsconnect/internal/eventually"
	"tsconnect/key"
)

// countingRelay counts the WireGuard (not disco) packets a node sends through the relay.
type countingRelay struct {
	derpbind.Relay
	data atomic.Int64
}

func (r *countingRelay) Send(dst key.Public, pkt []byte) error {
	if !isDisco(pkt) {
		r.data.Add(1)
	}
	return r.Relay.Send(dst, pkt)
}

type tnode struct {
	eng   *engine.Engine
	conn  *Conn
	udp   *DroppingConn
	relay *countingRelay
	ip    netip.Addr
}

func newTNode(t *testing.T, hub *memrelay.Hub, i byte) *tnode {
	t.Helper()
	priv := key.NewPrivate()
	mc := hub.Client(priv.Public())
	t.Cleanup(func() { mc.Close() })
	uc := loopbackUDP(t)
	d := &DroppingConn{UDPConn: uc}
	c, err := New(Options{PacketConn: d, Interfaces: Loopback, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &countingRelay{Relay: mc}
	eng, err := engine.New(engine.Config{PrivateKey: priv, Bind: c.Bind(r, t.Logf), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	n := &tnode{eng: eng, conn: c, udp: d, relay: r, ip: netip.AddrFrom4([4]byte{100, 64, 0, i})}
	if err := eng.SetAddresses([]netip.Prefix{netip.PrefixFrom(n.ip, 32)}); err != nil {
		t.Fatal(err)
	}
	return n
}

func (n *tnode) node(t *testing.T) controlws.Node {
	eps := n.conn.Discover(context.Background(), nil)
	if len(eps) != 1 || !eps[0].Addr().IsLoopback() {
		t.Fatalf("endpoints %v, want the one loopback socket", eps)
	}
	return controlws.Node{Key: n.eng.PublicKey(), DiscoKey: n.conn.DiscoKey(), Endpoints: eps, HomeDERP: 1}
}

func connect(t *testing.T, a, b *tnode) {
	t.Helper()
	for _, p := range [][2]*tnode{{a, b}, {b, a}} {
		if err := p[0].eng.SetPeers([]engine.Peer{{Key: p[1].eng.PublicKey(), AllowedIPs: []netip.Prefix{netip.PrefixFrom(p[1].ip, 32)}}}); err != nil {
			t.Fatal(err)
		}
		p[0].conn.SetPeers([]controlws.Node{p[1].node(t)})
	}
}

// echo serves an echo on b's port 7 and returns a's connection to it.
func echo(t *testing.T, a, b *tnode) net.Conn {
	t.Helper()
	ln, err := b.eng.ListenTCP(7)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := a.eng.DialContext(ctx, "tcp", netip.AddrPortFrom(b.ip, 7))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends n bytes and reads them back within d.
func roundTrip(t *testing.T, c net.Conn, n int, d time.Duration) {
	t.Helper()
	c.SetDeadline(time.Now().Add(d))
	buf := make([]byte, n)
	for i := range buf {
		buf[i] = byte(i)
	}
	go c.Write(buf)
	got := make([]byte, n)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("echo of %d bytes: %v", n, err)
	}
}

// TestDirectThenFallback: two engines on loopback start on the relay, go direct (the
// relay then carries no data packet), fall back to the relay within 2 s when the direct
// path dies, and the TCP connection over them goes on throughout.
func TestDirectThenFallback(t *testing.T) {
	hub := &memrelay.Hub{}
	a, b := newTNode(t, hub, 1), newTNode(t, hub, 2)
	connect(t, a, b)
	c := echo(t, a, b)
	roundTrip(t, c, 1000, 5*time.Second)
	up := eventually.Took(t, "direct path", func() bool {
		return a.conn.Path(b.eng.PublicKey()).Direct.IsValid() && b.conn.Path(a.eng.PublicKey()).Direct.IsValid()
	})
	t.Logf("direct after %v: a→b via %v", up, a.conn.Path(b.eng.PublicKey()).Direct)

	relayA, relayB := a.relay.data.Load(), b.relay.data.Load()
	sentA := a.conn.Stats().DirectSent
	roundTrip(t, c, 1<<20, 10*time.Second)
	if da, db := a.relay.data.Load()-relayA, b.relay.data.Load()-relayB; da != 0 || db != 0 {
		t.Fatalf("after the upgrade the relay carried %d+%d data packets, want 0", da, db)
	}
	if a.conn.Stats().DirectSent == sentA {
		t.Fatal("no data packet went direct")
	}
	if rtt := a.conn.Path(b.eng.PublicKey()).RTT; rtt <= 0 {
		t.Fatalf("no RTT measured: %v", rtt)
	}

	// The direct path dies: both sockets drop everything.
	a.udp.Drop.Store(true)
	b.udp.Drop.Store(true)
	relayA = a.relay.data.Load()
	stop := make(chan struct{})
	go func() { // traffic keeps the peers active, as an open SSH session would
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				c.Write([]byte("x"))
			}
		}
	}()
	down := eventually.Took(t, "fallback to the relay", func() bool {
		return !a.conn.Path(b.eng.PublicKey()).Direct.IsValid()
	})
	close(stop)
	t.Logf("back on the relay %v after the direct path died", down)
	// Drain what the writer sent, then the session goes on through the relay.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	drain := make([]byte, 4096)
	for {
		c.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
		if _, err := c.Read(drain); err != nil {
			break
		}
	}
	roundTrip(t, c, 64<<10, 10*time.Second)
	if a.relay.data.Load() == relayA {
		t.Fatal("after the fallback no data went through the relay")
	}
}

// TestForgedPong: a pong sealed with a key other than the peer's disco key does not move
// the path, while the same pong sealed with the peer's key does (the test can fail).
func TestForgedPong(t *testing.T) {
	uc := loopbackUDP(t)
	a, err := New(Options{PacketConn: uc, Interfaces: Loopback, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	peerDisco, peerNode := key.NewPrivate(), key.NewPrivate().Public()
	forger := loopbackUDP(t)
	defer forger.Close()
	fAddr := forger.LocalAddr().(*net.UDPAddr).AddrPort()
	a.SetPeers([]controlws.Node{{Key: peerNode, DiscoKey: peerDisco.Public(), Endpoints: []netip.AddrPort{fAddr}}})
	// A ping to fAddr, as a probe would send.
	a.mu.Lock()
	o := a.pingLocked(a.peers[peerNode], fAddr, nil)
	a.mu.Unlock()
	a.sendAll([]outPacket{o})
	var tx TxID
	a.mu.Lock()
	for t := range a.pending {
		tx = t
	}
	a.mu.Unlock()
	aAddr := uc.LocalAddr().(*net.UDPAddr).AddrPort()
	pong := discoMsg{typ: msgPong, tx: tx, src: fAddr}

	wrong := key.NewPrivate()
	forged := sealDisco(pong, peerDisco.Public(), (*[32]byte)(&wrong), a.DiscoKey()) // claims the peer's key
	if _, err := forger.WriteToUDPAddrPort(forged, aAddr); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, "forged pong dropped", func() bool { return a.Stats().DiscoDropped >= 1 })
	if p := a.Path(peerNode); p.Direct.IsValid() {
		t.Fatalf("a forged pong moved the path to %v", p.Direct)
	}

	real := sealDisco(pong, peerDisco.Public(), (*[32]byte)(&peerDisco), a.DiscoKey())
	forger.WriteToUDPAddrPort(real, aAddr)
	eventually.True(t, "the real pong takes the path", func() bool { return a.Path(peerNode).Direct == fAddr })

	// Replayed, it answers no ping any more.
	dropped := a.Stats().DiscoDropped
	forger.WriteToUDPAddrPort(real, aAddr)
	eventually.True(t, "replayed pong dropped", func() bool { return a.Stats().DiscoDropped > dropped })
}

// TestDiscoFormat: a sealed message opens with the right keys only, and changed bytes fail.
func TestDiscoFormat(t *testing.T) {
	s, r := key.NewPrivate(), key.NewPrivate()
	m := discoMsg{typ: msgPong, tx: newTxID(), src: netip.MustParseAddrPort("192.0.2.1:41641")}
	pkt := sealDisco(m, s.Public(), (*[32]byte)(&s), r.Public())
	if !isDisco(pkt) || len(pkt) > MaxDiscoLen {
		t.Fatalf("not a disco packet or too long: %d bytes", len(pkt))
	}
	sender, err := discoSender(pkt)
	if err != nil || sender != s.Public() {
		t.Fatalf("sender %v, %v", sender, err)
	}
	got, err := openDisco(pkt, sender, (*[32]byte)(&r))
	if err != nil || got.typ != m.typ || got.tx != m.tx || got.src != m.src {
		t.Fatalf("opened %+v, %v; want %+v", got, err, m)
	}
	other := key.NewPrivate()
	if _, err := openDisco(pkt, sender, (*[32]byte)(&other)); err == nil {
		t.Fatal("opened with another receiver key")
	}
	pkt[len(pkt)-1] ^= 1
	if _, err := openDisco(pkt, sender, (*[32]byte)(&r)); err == nil {
		t.Fatal("opened a changed packet")
	}
	if _, err := discoSender(make([]byte, MaxDiscoLen+1)); err == nil {
		t.Fatal("an oversized packet was taken")
	}
}

// countingPC counts the packets a STUN server reads.
type countingPC struct {
	net.PacketConn
	n atomic.Int64
}

func (c *countingPC) ReadFrom(b []byte) (int, net.Addr, error) {
	n, a, err := c.PacketConn.ReadFrom(b)
	if err == nil {
		c.n.Add(1)
	}
	return n, a, err
}

// TestDiscoverAsksSTUN: Discover asks the map's STUN server through the node's own socket
// and publishes the address it answers, once with the socket's local one.
func TestDiscoverAsksSTUN(t *testing.T) {
	spc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &countingPC{PacketConn: spc}
	go derpws.ServeSTUN(srv, t.Logf)
	defer spc.Close()
	uc := loopbackUDP(t)
	c, err := New(Options{PacketConn: uc, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dm := &derpws.Map{Regions: map[int]*derpws.Region{1: {RegionID: 1, Nodes: []*derpws.Node{
		{Name: "1a", RegionID: 1, HostName: "127.0.0.1", STUNPort: spc.LocalAddr().(*net.UDPAddr).Port},
		{Name: "1b", RegionID: 1, HostName: "127.0.0.1", STUNPort: -1}, // no STUN: not asked
	}}}}
	eps := c.Discover(context.Background(), dm)
	want := uc.LocalAddr().(*net.UDPAddr).AddrPort()
	if len(eps) != 1 || eps[0] != want {
		t.Fatalf("endpoints %v, want [%v]", eps, want)
	}
	if n := srv.n.Load(); n != 1 {
		t.Fatalf("the STUN server got %d requests, want 1", n)
	}
}

// TestLocalEndpoints: a socket bound to every address publishes each listed interface
// address with its port, IPv4 only for an IPv4 socket, deduplicated and capped.
func TestLocalEndpoints(t *testing.T) {
	ifs := []netip.Addr{netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("192.0.2.7")}
	got := localEndpoints(ifs, 41641, false, 32)
	if len(got) != 2 || got[0].String() != "192.0.2.7:41641" || got[1].String() != "[2001:db8::1]:41641" {
		t.Fatalf("endpoints %v", got)
	}
	if got := localEndpoints(ifs, 41641, true, 32); len(got) != 1 {
		t.Fatalf("IPv4 socket: endpoints %v", got)
	}
	if got := localEndpoints(ifs, 41641, false, 1); len(got) != 1 {
		t.Fatalf("cap 1: endpoints %v", got)
	}
	lo, _ := Loopback()
	if len(lo) != 1 || lo[0].String() != "127.0.0.1" {
		t.Fatalf("Loopback lists %v", lo)
	}
}

// pinger is a peer of a Conn under test that speaks disco by hand from its own socket.
type pinger struct {
	t     *testing.T
	disco key.Private
	uc    *net.UDPConn
	to    netip.AddrPort
	c     *Conn
}

func newPinger(t *testing.T) *pinger {
	uc := loopbackUDP(t)
	t.Cleanup(func() { uc.Close() })
	pc := loopbackUDP(t)
	c, err := New(Options{PacketConn: pc, Interfaces: Loopback, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &pinger{t: t, disco: key.NewPrivate(), uc: uc, to: pc.LocalAddr().(*net.UDPAddr).AddrPort(), c: c}
}

func (p *pinger) ping(from key.Private, tx TxID) {
	pkt := sealDisco(discoMsg{typ: msgPing, tx: tx}, from.Public(), (*[32]byte)(&from), p.c.DiscoKey())
	if _, err := p.uc.WriteToUDPAddrPort(pkt, p.to); err != nil {
		p.t.Fatal(err)
	}
}

// pongs reads the pongs that come within d and returns their tx ids and observed sources.
func (p *pinger) pongs(d time.Duration) map[TxID]netip.AddrPort {
	got := map[TxID]netip.AddrPort{}
	buf := make([]byte, 2048)
	p.uc.SetReadDeadline(time.Now().Add(d))
	for {
		n, _, err := p.uc.ReadFromUDPAddrPort(buf)
		if err != nil {
			return got
		}
		sender, err := discoSender(buf[:n])
		if err != nil || sender != p.c.DiscoKey() {
			continue
		}
		m, err := openDisco(buf[:n], sender, (*[32]byte)(&p.disco))
		if err == nil && m.typ == msgPong {
			got[m.tx] = m.src
		}
	}
}

// TestPingAnswers: a peer's ping gets a pong naming the address it came from; a replayed
// ping, a ping from a disco key no peer has, and pings past the per-source rate get none.
func TestPingAnswers(t *testing.T) {
	p := newPinger(t)
	p.c.SetPeers([]controlws.Node{{Key: key.NewPrivate().Public(), DiscoKey: p.disco.Public()}})
	self := p.uc.LocalAddr().(*net.UDPAddr).AddrPort()

	tx := newTxID()
	p.ping(p.disco, tx)
	if got := p.pongs(time.Second); len(got) != 1 || got[tx] != self {
		t.Fatalf("pongs %v, want one for %x naming %v", got, tx, self)
	}
	p.ping(p.disco, tx) // replayed
	stranger := key.NewPrivate()
	p.ping(stranger, newTxID())
	if got := p.pongs(300 * time.Millisecond); len(got) != 0 {
		t.Fatalf("a replayed or stranger's ping was answered: %v", got)
	}

	const flood = 200
	for range flood {
		p.ping(p.disco, newTxID())
	}
	got := p.pongs(time.Second)
	if len(got) == 0 || len(got) > PingBurst+PingRate {
		t.Fatalf("%d pongs for a flood of %d pings, want 1 to %d", len(got), flood, PingBurst+PingRate)
	}
	t.Logf("%d of %d flooded pings answered", len(got), flood)
}

// TestSharedDiscoKeyIsNobodys: two peers claiming one disco key get no direct path: their
// pings go unanswered.
func TestSharedDiscoKeyIsNobodys(t *testing.T) {
	p := newPinger(t)
	p.c.SetPeers([]controlws.Node{
		{Key: key.NewPrivate().Public(), DiscoKey: p.disco.Public()},
		{Key: key.NewPrivate().Public(), DiscoKey: p.disco.Public()},
	})
	p.ping(p.disco, newTxID())
	if got := p.pongs(300 * time.Millisecond); len(got) != 0 {
		t.Fatalf("a ping under a shared disco key was answered: %v", got)
	}
}

// loopbackUDP opens a UDP socket on 127.0.0.1, closed when the test ends.
func loopbackUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uc.Close() })
	return uc
}
