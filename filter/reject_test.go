package filter

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"

	"tsconnect/policy/rules"
)

// TestRefusedSYNGetsReset: a connection attempt the policy refuses is answered with a reset
// the dialer's stack accepts (addressed back, acking the SYN, valid checksums); an allowed
// SYN, a stray ACK and a SYN-ACK get none, and a flood gets at most rejectRate a second.
func TestRefusedSYNGetsReset(t *testing.T) {
	now := time.Unix(1e9, 0)
	var sent [][]byte
	m := &memTun{}
	d := Wrap(m, &Options{Now: func() time.Time { return now }, Reject: func(p []byte) { sent = append(sent, p) }})
	d.SetFilter(ssh22From(peer))

	syn := tcp4(peer, self, 40000, 80, tcpSYN)
	binary.BigEndian.PutUint32(syn[24:28], 0xfffffffe)
	deliver(t, d, m, syn)
	if len(sent) != 1 {
		t.Fatalf("%d resets for one refused SYN, want 1", len(sent))
	}
	r := sent[0]
	p, ok := parse(r)
	if !ok || p.proto != rules.ProtoTCP || p.src != self || p.dst != peer || p.sport != 80 || p.dport != 40000 {
		t.Fatalf("reset %+v: want TCP %v:80 → %v:40000", p, self, peer)
	}
	if p.tcpFlags != tcpRST|tcpACK || binary.BigEndian.Uint32(r[28:32]) != 0xffffffff {
		t.Errorf("reset flags %#x ack %#x: want RST|ACK acking seq+1", p.tcpFlags, binary.BigEndian.Uint32(r[28:32]))
	}
	if got := checksum.Checksum(r[:20], 0); got != 0xffff {
		t.Errorf("IPv4 header checksum does not verify (%#x)", got)
	}
	pseudo := checksum.Combine(checksum.Checksum(r[12:20], 0), uint16(rules.ProtoTCP)+20)
	if got := checksum.Checksum(r[20:], pseudo); got != 0xffff {
		t.Errorf("TCP checksum does not verify (%#x)", got)
	}

	sent = nil
	deliver(t, d, m, tcp4(peer, self, 40000, 22, tcpSYN), tcp4(peer, self, 40000, 80, tcpACK), tcp4(peer, self, 40000, 80, tcpSYN|tcpACK))
	if len(sent) != 0 {
		t.Errorf("%d resets for an allowed SYN, a stray ACK and a SYN-ACK; want none", len(sent))
	}

	sent, now = nil, now.Add(time.Second)
	for range rejectRate + 20 {
		deliver(t, d, m, tcp4(peer, self, 40001, 81, tcpSYN))
	}
	if len(sent) != rejectRate {
		t.Errorf("%d resets for %d refused SYNs in one second, want %d", len(sent), rejectRate+20, rejectRate)
	}
	now = now.Add(time.Second)
	deliver(t, d, m, tcp4(peer, self, 40001, 81, tcpSYN))
	if len(sent) != rejectRate+1 {
		t.Error("no reset a second later")
	}
}

// TestResetIPv6: the reset of an IPv6 SYN is IPv6, addressed back, with a valid checksum.
func TestResetIPv6(t *testing.T) {
	src, dst := netip.MustParseAddr("fd7a:115c:a1e0::2"), netip.MustParseAddr("fd7a:115c:a1e0::1")
	r := reset(packet{proto: rules.ProtoTCP, src: src, dst: dst, sport: 1234, dport: 5900, tcpSeq: 7})
	p, ok := parse(r)
	if !ok || p.src != dst || p.dst != src || p.sport != 5900 || p.dport != 1234 || p.tcpFlags != tcpRST|tcpACK {
		t.Fatalf("reset %+v", p)
	}
	pseudo := checksum.Combine(checksum.Checksum(r[8:40], 0), uint16(rules.ProtoTCP)+20)
	if got := checksum.Checksum(r[40:], pseudo); got != 0xffff {
		t.Errorf("TCP checksum does not verify (%#x)", got)
	}
}
