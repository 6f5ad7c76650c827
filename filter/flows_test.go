package filter

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"tsconnect/policy/rules"
)

func udp4(src, dst netip.Addr, sport, dport uint16) []byte {
	b := make([]byte, 28)
	b[0], b[9] = 0x45, byte(rules.ProtoUDP)
	binary.BigEndian.PutUint16(b[2:4], 28)
	copy(b[12:16], src.AsSlice())
	copy(b[16:20], dst.AsSlice())
	binary.BigEndian.PutUint16(b[20:22], sport)
	binary.BigEndian.PutUint16(b[22:24], dport)
	return b
}

// TestOnePeerCannotEvictOthersFlows: a peer that makes the node answer it from many ports
// (each UDP reply opens a flow) is held to maxFlowsPerPeer, and the connections the node
// has with another peer keep working, however long the flood goes on.
func TestOnePeerCannotEvictOthersFlows(t *testing.T) {
	m := &memTun{}
	now := time.Unix(1000, 0)
	d := Wrap(m, &Options{Now: func() time.Time { return now }})
	d.SetFilter(&rules.Filter{})
	for i := range 100 {
		send(t, d, m, tcp4(self, peer, uint16(40000+i), 443, tcpSYN))
	}
	for i := range 3 * maxFlows {
		now = now.Add(time.Millisecond) // the flood's flows are the newest: no help from age
		send(t, d, m, udp4(self, other, 53, uint16(i)))
	}
	if n := len(d.flows.byPeer[other]); n > maxFlowsPerPeer {
		t.Fatalf("the flooding peer has %d flows, more than %d", n, maxFlowsPerPeer)
	}
	for i := range 100 {
		if deliver(t, d, m, tcp4(peer, self, 443, uint16(40000+i), tcpSYN|tcpACK)) != 1 {
			t.Fatalf("the reply of the other peer's connection %d was dropped after the flood", i)
		}
	}
	// The flooder's newest flows still work (it is capped, not cut off).
	if deliver(t, d, m, udp4(other, self, uint16(3*maxFlows-1), 53)) != 1 {
		t.Error("the flooding peer's newest flow does not pass")
	}
}

// TestManyPeersCannotEvictASmallOne: when the whole table is full, flows go from the
// peer with the most, never from a peer with a few connections, and the total stays bounded.
func TestManyPeersCannotEvictASmallOne(t *testing.T) {
	m := &memTun{}
	now := time.Unix(1000, 0)
	d := Wrap(m, &Options{Now: func() time.Time { return now }})
	d.SetFilter(&rules.Filter{})
	for i := range 10 {
		send(t, d, m, tcp4(self, peer, uint16(40000+i), 443, tcpSYN))
	}
	for p := range 40 {
		flooder := netip.AddrFrom4([4]byte{100, 64, 1, byte(p)})
		for i := range maxFlowsPerPeer {
			now = now.Add(time.Microsecond)
			send(t, d, m, udp4(self, flooder, 53, uint16(i)))
		}
	}
	if n := d.flows.len(); n > maxFlows {
		t.Fatalf("%d flows tracked, more than %d", n, maxFlows)
	}
	for i := range 10 {
		if deliver(t, d, m, tcp4(peer, self, 443, uint16(40000+i), tcpSYN|tcpACK)) != 1 {
			t.Fatalf("a small peer's connection %d was evicted by the others' floods", i)
		}
	}
}

// BenchmarkFlowFlood measures opening flows to one peer past its bound (the cost of
// eviction under a flood).
func BenchmarkFlowFlood(b *testing.B) {
	m := &memTun{}
	d := Wrap(m, nil)
	d.SetFilter(&rules.Filter{})
	pkt := udp4(self, other, 53, 0)
	bufs, sizes := [][]byte{make([]byte, off+1500)}, []int{0}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		binary.BigEndian.PutUint16(pkt[22:24], uint16(i))
		m.out = append(m.out[:0], pkt)
		d.Read(bufs, sizes, off)
	}
}
