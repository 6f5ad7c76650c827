package magicbind

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"tsconnect/controlws"
	"tsconnect/derpbind/memrelay"
	"tsconnect/engine"
	"tsconnect/internal/eventually"
	"tsconnect/key"
)

// TestCallMeMaybe: two nodes whose maps carry no endpoints of each other still go direct,
// because the one that starts probing tells the other its endpoints through the relay and
// that one pings them; a call-me-maybe over UDP instead moves nothing.
func TestCallMeMaybe(t *testing.T) {
	hub := &memrelay.Hub{}
	a, b := newTNode(t, hub, 1), newTNode(t, hub, 2)
	for _, p := range [][2]*tnode{{a, b}, {b, a}} {
		if err := p[0].eng.SetPeers([]engine.Peer{{Key: p[1].eng.PublicKey(), AllowedIPs: []netip.Prefix{netip.PrefixFrom(p[1].ip, 32)}}}); err != nil {
			t.Fatal(err)
		}
		n := p[1].node(t) // runs Discover: the node knows its own endpoints
		n.Endpoints = nil
		p[0].conn.SetPeers([]controlws.Node{n})
	}

	// A call-me-maybe over UDP, from a hostile socket naming a sink: dropped, never pinged.
	sink, got := sinks(t, 1)
	hostile := loopbackUDP(t)
	dropped := a.conn.Stats().DiscoDropped
	cmm := sealDisco(discoMsg{typ: msgCallMeMaybe, tx: newTxID(), eps: sink}, b.conn.DiscoKey(), &b.conn.discoPriv, a.conn.DiscoKey())
	hostile.WriteToUDPAddrPort(cmm, a.udp.LocalAddr().(*net.UDPAddr).AddrPort())

	c := echo(t, a, b)
	roundTrip(t, c, 1000, 5*time.Second)
	up := eventually.Took(t, "direct path through call-me-maybe alone", func() bool {
		return a.conn.Path(b.eng.PublicKey()).Direct.IsValid() && b.conn.Path(a.eng.PublicKey()).Direct.IsValid()
	})
	roundTrip(t, c, 64<<10, 10*time.Second)
	if n := got.Load(); n != 0 {
		t.Fatalf("a call-me-maybe over UDP made the node ping its endpoint %d times", n)
	}
	if a.conn.Stats().DiscoDropped == dropped {
		t.Fatal("the call-me-maybe over UDP was not counted as dropped")
	}
	t.Logf("direct through call-me-maybe after %v: a→b %v, b→a %v", up,
		a.conn.Path(b.eng.PublicKey()).Direct, b.conn.Path(a.eng.PublicKey()).Direct)
}

// TestCallMeMaybeFormat: a call-me-maybe carries up to MaxCallMeMaybe endpoints; unusable
// ones are dropped on opening, and one with no endpoint or too many does not open.
func TestCallMeMaybeFormat(t *testing.T) {
	s, r := key.NewPrivate(), key.NewPrivate()
	eps := []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:41641"), netip.MustParseAddrPort("[2001:db8::1]:7"),
		netip.MustParseAddrPort("224.0.0.1:9"), netip.MustParseAddrPort("192.0.2.2:0")}
	pkt := sealDisco(discoMsg{typ: msgCallMeMaybe, tx: newTxID(), eps: eps}, s.Public(), (*[32]byte)(&s), r.Public())
	m, err := openDisco(pkt, s.Public(), (*[32]byte)(&r))
	if err != nil || m.typ != msgCallMeMaybe || len(m.eps) != 2 || m.eps[0] != eps[0] || m.eps[1] != eps[1] {
		t.Fatalf("opened %+v, %v; want the two usable endpoints of %v", m, err, eps)
	}
	many := make([]netip.AddrPort, 20)
	for i := range many {
		many[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), 1)
	}
	pkt = sealDisco(discoMsg{typ: msgCallMeMaybe, tx: newTxID(), eps: many}, s.Public(), (*[32]byte)(&s), r.Public())
	if len(pkt) > MaxDiscoLen {
		t.Fatalf("a full call-me-maybe is %d bytes, over %d", len(pkt), MaxDiscoLen)
	}
	if m, err := openDisco(pkt, s.Public(), (*[32]byte)(&r)); err != nil || len(m.eps) != MaxCallMeMaybe {
		t.Fatalf("a call-me-maybe of 20 endpoints opened as %d endpoints, %v; want the first %d", len(m.eps), err, MaxCallMeMaybe)
	}
	empty := sealDisco(discoMsg{typ: msgCallMeMaybe, tx: newTxID()}, s.Public(), (*[32]byte)(&s), r.Public())
	if _, err := openDisco(empty, s.Public(), (*[32]byte)(&r)); err == nil {
		t.Fatal("a call-me-maybe without endpoints opened")
	}
}
