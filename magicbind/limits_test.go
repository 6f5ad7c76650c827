package magicbind

import (
	"crypto/rand"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"tsconnect/controlws"
	"tsconnect/derpbind"
	"tsconnect/derpbind/memrelay"
	"tsconnect/internal/eventually"
	"tsconnect/key"
)

// sinks opens n loopback UDP sockets and counts the disco packets each receives.
func sinks(t *testing.T, n int) ([]netip.AddrPort, *atomic.Int64) {
	t.Helper()
	var got atomic.Int64
	var addrs []netip.AddrPort
	for range n {
		uc := loopbackUDP(t)
		addrs = append(addrs, uc.LocalAddr().(*net.UDPAddr).AddrPort())
		go func() {
			buf := make([]byte, 2048)
			for {
				n, _, err := uc.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				if isDisco(buf[:n]) {
					got.Add(1)
				}
			}
		}()
	}
	return addrs, &got
}

// randKey is a random 32-byte public key (no curve operation: cheap for big maps).
func randKey() key.Public {
	var k key.Public
	rand.Read(k[:])
	return k
}

func newLoneConn(t *testing.T) *Conn {
	t.Helper()
	c, err := New(Options{PacketConn: loopbackUDP(t), Interfaces: Loopback, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// keepActive notes a data packet to each of ks every 100 ms until the test ends, as
// WireGuard's Send does.
func keepActive(t *testing.T, c *Conn, ks ...key.Public) {
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		for {
			for _, k := range ks {
				c.sendPath(k, 1)
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
}

// TestNoPingsWithoutTraffic: a map of 10,000 peers with endpoints costs no ping while no
// data goes to or comes from them; the one peer that then gets a packet is probed at once.
func TestNoPingsWithoutTraffic(t *testing.T) {
	c := newLoneConn(t)
	eps, got := sinks(t, 4)
	nodes := make([]controlws.Node, 10000)
	for i := range nodes {
		nodes[i] = controlws.Node{Key: randKey(), DiscoKey: randKey(), Endpoints: eps, HomeDERP: 1}
	}
	c.SetPeers(nodes)
	time.Sleep(ProbeInterval + 3*tick)
	if n := got.Load(); n != 0 {
		t.Fatalf("%d pings to 10,000 idle peers, want 0", n)
	}
	if s := c.Stats(); s.PingsThrottled != 0 {
		t.Fatalf("%d pings throttled while idle, want 0", s.PingsThrottled)
	}
	c.sendPath(nodes[42].Key, 1)
	d := eventually.Took(t, "a probe of the peer with traffic", func() bool { return got.Load() == int64(len(eps)) })
	time.Sleep(3 * tick)
	if n := got.Load(); n != int64(len(eps)) {
		t.Fatalf("%d pings after one peer got traffic, want its %d endpoints", n, len(eps))
	}
	t.Logf("idle map of %d peers: 0 pings in %v; the active peer probed %v after its packet", len(nodes), ProbeInterval+3*tick, d)
}

// TestPingsPerPeerBounded: an active peer with 32 endpoints, pinged by the probe loop and
// by a caller of Ping every 20 ms, receives at most PeerPingBurst + PeerPingRate a second.
func TestPingsPerPeerBounded(t *testing.T) {
	c := newLoneConn(t)
	eps, got := sinks(t, controlws.MaxEndpoints)
	k := randKey()
	hub := &memrelay.Hub{}
	relay := &discoCounter{Relay: hub.Client(randKey())}
	c.Bind(relay, t.Logf)
	c.SetPeers([]controlws.Node{{Key: k, DiscoKey: randKey(), Endpoints: eps, HomeDERP: 1}})
	keepActive(t, c, k)
	start := time.Now()
	for time.Since(start) < 3*time.Second {
		if _, err := c.Ping(k); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the last ones in flight
	el := time.Since(start)
	n := got.Load() + relay.n.Load()
	max := int64(PeerPingBurst + PeerPingRate*el.Seconds() + 1)
	if n > max || n < PeerPingBurst {
		t.Fatalf("%d pings reached the peer in %v, want %d to %d", n, el, PeerPingBurst, max)
	}
	if s := c.Stats(); s.PingsThrottled == 0 {
		t.Fatal("no ping counted as throttled")
	}
	t.Logf("one peer, 32 endpoints, Ping every 20 ms: %d pings reached it (%d through the relay) in %v (bound %d), %d throttled", n, relay.n.Load(), el.Round(time.Millisecond), max, c.Stats().PingsThrottled)
}

// TestPingsTotalBounded: 100 active peers of 8 endpoints each (800 pings a probe round)
// receive at most TotalPingBurst + TotalPingRate a second together.
func TestPingsTotalBounded(t *testing.T) {
	c := newLoneConn(t)
	eps, got := sinks(t, 8)
	nodes := make([]controlws.Node, 100)
	ks := make([]key.Public, len(nodes))
	for i := range nodes {
		ks[i] = randKey()
		nodes[i] = controlws.Node{Key: ks[i], DiscoKey: randKey(), Endpoints: eps, HomeDERP: 1}
	}
	c.SetPeers(nodes)
	start := time.Now()
	keepActive(t, c, ks...)
	time.Sleep(ProbeInterval + time.Second)
	el := time.Since(start)
	n := got.Load()
	max := int64(TotalPingBurst + TotalPingRate*el.Seconds() + 1)
	if n > max || n < TotalPingBurst/2 {
		t.Fatalf("%d pings reached 100 peers in %v, want %d to %d", n, el, TotalPingBurst/2, max)
	}
	if s := c.Stats(); s.PingsThrottled == 0 {
		t.Fatal("no ping counted as throttled")
	}
	t.Logf("100 active peers × 8 endpoints: %d pings in %v (bound %d, asked %d), %d throttled",
		n, el.Round(time.Millisecond), max, n+int64(c.Stats().PingsThrottled), c.Stats().PingsThrottled)
}

// TestSpoofedFloodDoesNotStarve: while 64 hostile sockets flood both nodes with garbage
// after the disco magic, with messages from unknown disco keys and with forged messages
// claiming the other node's disco key, the two still go direct, and the forged claims
// from unproven addresses are throttled unopened.
func TestSpoofedFloodDoesNotStarve(t *testing.T) {
	hub := &memrelay.Hub{}
	a, b := newTNode(t, hub, 1), newTNode(t, hub, 2)
	targets := []struct {
		to    netip.AddrPort
		claim key.Public // the disco key a forged message claims
		self  key.Public
	}{
		{a.udp.LocalAddr().(*net.UDPAddr).AddrPort(), b.conn.DiscoKey(), a.conn.DiscoKey()},
		{b.udp.LocalAddr().(*net.UDPAddr).AddrPort(), a.conn.DiscoKey(), b.conn.DiscoKey()},
	}
	var hostile []*net.UDPConn
	for range 64 {
		hostile = append(hostile, loopbackUDP(t))
	}
	stop := make(chan struct{})
	var sent atomic.Int64
	floodDone := make(chan struct{})
	go func() {
		defer close(floodDone)
		stranger := key.NewPrivate()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			for j := range 50 { // 50 packets a millisecond at most
				tg := targets[(i+j)%2]
				var pkt []byte
				switch (i + j) % 3 {
				case 0: // garbage after the magic
					pkt = append([]byte(discoMagic), make([]byte, 120)...)
					rand.Read(pkt[len(discoMagic):])
				case 1: // a forged message claiming the peer's disco key
					pkt = append([]byte(discoMagic), tg.claim[:]...)
					pkt = append(pkt, make([]byte, 24+box16+2+txLen)...)
					rand.Read(pkt[len(discoMagic)+32:])
				default: // a well-formed ping from a key nobody has
					pkt = sealDisco(discoMsg{typ: msgPing, tx: newTxID()}, stranger.Public(), (*[32]byte)(&stranger), tg.self)
				}
				hostile[(i*50+j)%len(hostile)].WriteToUDPAddrPort(pkt, tg.to)
				sent.Add(1)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	defer func() { close(stop); <-floodDone }()
	time.Sleep(time.Second) // the flood is on before the peers know each other

	start := time.Now()
	connect(t, a, b)
	c := echo(t, a, b)
	roundTrip(t, c, 1000, 10*time.Second)
	eventually.True(t, "direct path under a flood", func() bool {
		return a.conn.Path(b.eng.PublicKey()).Direct.IsValid() && b.conn.Path(a.eng.PublicKey()).Direct.IsValid()
	})
	up := time.Since(start) // at most: the first traffic to both direct
	eventually.True(t, "forged claims throttled at both nodes", func() bool {
		return a.conn.Stats().PingsThrottled > 0 && b.conn.Stats().PingsThrottled > 0
	})
	roundTrip(t, c, 64<<10, 10*time.Second)
	if !a.conn.Path(b.eng.PublicKey()).Direct.IsValid() || !b.conn.Path(a.eng.PublicKey()).Direct.IsValid() {
		t.Fatal("the flood pushed the pair off its direct path")
	}
	sa, sb := a.conn.Stats(), b.conn.Stats()
	if sa.DiscoDropped == 0 || sb.DiscoDropped == 0 {
		t.Fatalf("garbage was not dropped: a %d, b %d", sa.DiscoDropped, sb.DiscoDropped)
	}
	t.Logf("under a flood of %d hostile packets: direct after %v; a dropped %d and throttled %d, b dropped %d and throttled %d",
		sent.Load(), up, sa.DiscoDropped, sa.PingsThrottled, sb.DiscoDropped, sb.PingsThrottled)
}

// discoCounter counts the disco messages a Conn sends through the relay.
type discoCounter struct {
	derpbind.Relay
	n atomic.Int64
}

func (r *discoCounter) Send(dst key.Public, pkt []byte) error {
	if isDisco(pkt) {
		r.n.Add(1)
	}
	return r.Relay.Send(dst, pkt)
}

// box16 is NaCl box's overhead, for a forged message of a real one's length.
const box16 = 16
