package filter

import (
	"encoding/binary"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tun"

	"tsconnect/policy/rules"
)

// memTun is an in-memory tun.Device: Read hands out queued packets, Write records.
type memTun struct {
	out     [][]byte // packets the node sends, served by Read
	written [][]byte
}

func (m *memTun) File() *os.File { return nil }
func (m *memTun) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n := 0
	for n < len(bufs) && len(m.out) > 0 {
		sizes[n] = copy(bufs[n][offset:], m.out[0])
		m.out = m.out[1:]
		n++
	}
	return n, nil
}
func (m *memTun) Write(bufs [][]byte, offset int) (int, error) {
	for _, b := range bufs {
		m.written = append(m.written, append([]byte(nil), b[offset:]...))
	}
	return len(bufs), nil
}
func (m *memTun) MTU() (int, error)        { return 1280, nil }
func (m *memTun) Name() (string, error)    { return "mem", nil }
func (m *memTun) Events() <-chan tun.Event { return nil }
func (m *memTun) Close() error             { return nil }
func (m *memTun) BatchSize() int           { return 1 }

const off = 16 // room WireGuard leaves before a packet

var (
	self  = netip.MustParseAddr("100.64.0.1")
	peer  = netip.MustParseAddr("100.64.0.2")
	other = netip.MustParseAddr("100.64.0.3")
)

// tcp4 builds an IPv4 TCP packet.
func tcp4(src, dst netip.Addr, sport, dport uint16, flags byte) []byte {
	b := make([]byte, 40)
	b[0], b[9] = 0x45, byte(rules.ProtoTCP)
	binary.BigEndian.PutUint16(b[2:4], 40)
	copy(b[12:16], src.AsSlice())
	copy(b[16:20], dst.AsSlice())
	binary.BigEndian.PutUint16(b[20:22], sport)
	binary.BigEndian.PutUint16(b[22:24], dport)
	b[33] = flags
	return b
}

func icmp4(src, dst netip.Addr, typ byte, id uint16) []byte {
	b := make([]byte, 28)
	b[0], b[9] = 0x45, byte(rules.ProtoICMP)
	copy(b[12:16], src.AsSlice())
	copy(b[16:20], dst.AsSlice())
	b[20] = typ
	binary.BigEndian.PutUint16(b[24:26], id)
	return b
}

// deliver writes pkts inbound and returns how many reached the node.
func deliver(t *testing.T, d *Device, m *memTun, pkts ...[]byte) int {
	t.Helper()
	before := len(m.written)
	bufs := make([][]byte, len(pkts))
	for i, p := range pkts {
		bufs[i] = append(make([]byte, off), p...)
	}
	if n, err := d.Write(bufs, off); err != nil || n != len(pkts) {
		t.Fatalf("Write: %d, %v", n, err)
	}
	return len(m.written) - before
}

// send passes pkts outbound through Read.
func send(t *testing.T, d *Device, m *memTun, pkts ...[]byte) {
	t.Helper()
	m.out = append(m.out, pkts...)
	bufs, sizes := make([][]byte, len(pkts)), make([]int, len(pkts))
	for i := range bufs {
		bufs[i] = make([]byte, off+1500)
	}
	if n, err := d.Read(bufs, sizes, off); err != nil || n != len(pkts) {
		t.Fatalf("Read: %d, %v", n, err)
	}
}

func ssh22From(src netip.Addr) *rules.Filter {
	return &rules.Filter{{Src: []netip.Prefix{netip.PrefixFrom(src, 32)}, Dst: []netip.Prefix{netip.PrefixFrom(self, 32)},
		Ports: []rules.PortRange{{First: 22, Last: 22}}, Protos: []rules.Proto{rules.ProtoTCP}}}
}

func TestNoFilterAdmitsAll(t *testing.T) {
	m := &memTun{}
	d := Wrap(m, nil)
	if got := deliver(t, d, m, tcp4(other, self, 1000, 80, tcpSYN), icmp4(other, self, 8, 1)); got != 2 {
		t.Fatalf("%d of 2 packets admitted with no filter set", got)
	}
}

func TestFilterPortsAndSources(t *testing.T) {
	m := &memTun{}
	d := Wrap(m, nil)
	d.SetFilter(ssh22From(peer))
	if deliver(t, d, m, tcp4(peer, self, 40000, 22, tcpSYN)) != 1 {
		t.Fatal("SYN from peer to port 22 dropped; the filter allows it")
	}
	if deliver(t, d, m, tcp4(peer, self, 40000, 80, tcpSYN)) != 0 {
		t.Fatal("SYN from peer to port 80 admitted; only 22 is allowed")
	}
	if deliver(t, d, m, tcp4(other, self, 40000, 22, tcpSYN)) != 0 {
		t.Fatal("SYN from another node to port 22 admitted; only peer is allowed")
	}
	// A batch keeps the admitted packets in order.
	a, b := tcp4(peer, self, 1, 22, tcpACK), tcp4(peer, self, 2, 22, tcpACK)
	if deliver(t, d, m, a, tcp4(other, self, 1, 22, tcpSYN), b) != 2 || string(m.written[len(m.written)-2]) != string(a) {
		t.Fatal("mixed batch: want exactly the two allowed packets, in order")
	}
	if d.Dropped() != 3 {
		t.Fatalf("Dropped() = %d, want 3", d.Dropped())
	}
	d.SetFilter(&rules.Filter{})
	if deliver(t, d, m, tcp4(peer, self, 40000, 22, tcpACK)) != 0 {
		t.Fatal("an empty filter admitted a packet of a connection the node did not open")
	}
}

func TestRepliesToOwnConnections(t *testing.T) {
	m := &memTun{}
	now := time.Unix(1000, 0)
	d := Wrap(m, &Options{Now: func() time.Time { return now }})
	d.SetFilter(&rules.Filter{}) // nothing may come in on its own
	send(t, d, m, tcp4(self, peer, 50000, 443, tcpSYN), icmp4(self, peer, 8, 7))
	if deliver(t, d, m, tcp4(peer, self, 443, 50000, tcpSYN|tcpACK)) != 1 {
		t.Fatal("the reply to the node's own SYN was dropped")
	}
	if deliver(t, d, m, icmp4(peer, self, 0, 7)) != 1 {
		t.Fatal("the echo reply to the node's own ping was dropped")
	}
	if deliver(t, d, m, tcp4(peer, self, 443, 50001, tcpSYN|tcpACK), tcp4(other, self, 443, 50000, tcpACK), icmp4(peer, self, 0, 8)) != 0 {
		t.Fatal("packets of flows the node never opened were admitted")
	}
	// A reply the node sends (SYN-ACK) opens nothing: the remote's next SYN is judged anew.
	send(t, d, m, tcp4(self, other, 22, 40000, tcpSYN|tcpACK))
	if deliver(t, d, m, tcp4(other, self, 40000, 22, tcpACK)) != 0 {
		t.Fatal("the node's SYN-ACK opened a flow for the remote")
	}
	// Idle flows expire.
	now = now.Add(tcpTimeout + time.Second)
	if deliver(t, d, m, tcp4(peer, self, 443, 50000, tcpACK)) != 0 {
		t.Fatal("an expired flow still admits packets")
	}
}

func TestFlowTableBounded(t *testing.T) {
	m := &memTun{}
	d := Wrap(m, nil)
	d.SetFilter(&rules.Filter{})
	for i := 0; i < maxFlows+100; i++ {
		send(t, d, m, tcp4(self, peer, uint16(i), 443, tcpSYN))
	}
	if n := d.flows.len(); n > maxFlows {
		t.Fatalf("%d flows tracked, more than %d", n, maxFlows)
	}
}

func BenchmarkWriteAllowed(b *testing.B) {
	m := &memTun{}
	d := Wrap(m, nil)
	d.SetFilter(ssh22From(peer))
	bufs := [][]byte{append(make([]byte, off), tcp4(peer, self, 40000, 22, tcpACK)...)}
	b.ReportAllocs()
	for b.Loop() {
		m.written = m.written[:0]
		d.Write(bufs, off)
	}
}
