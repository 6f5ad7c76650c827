package filter

import (
	"encoding/binary"
	"net/netip"

	"tsconnect/policy/rules"
)

// packet is what the filter reads from an IP packet's headers.
type packet struct {
	proto    rules.Proto
	src, dst netip.Addr
	sport    uint16 // TCP/UDP/SCTP ports; ICMP echo identifier in both
	dport    uint16
	tcpFlags byte
	tcpSeq   uint32 // a TCP segment's sequence number
	icmpType byte
}

// TCP flags the filter looks at.
const (
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// ICMP echo types.
const (
	icmp4EchoRequest = 8
	icmp4EchoReply   = 0
	icmp6EchoRequest = 128
	icmp6EchoReply   = 129
)

// parse reads b's IP and transport headers. IPv6 extension headers are not walked: the
// first next-header value is taken as the protocol, so such packets match only rules for
// every protocol. A non-first IPv4 fragment carries no ports (0).
func parse(b []byte) (packet, bool) {
	var p packet
	if len(b) < 1 {
		return p, false
	}
	var l4 []byte
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return p, false
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl {
			return p, false
		}
		p.proto = rules.Proto(b[9])
		p.src = netip.AddrFrom4([4]byte(b[12:16]))
		p.dst = netip.AddrFrom4([4]byte(b[16:20]))
		if binary.BigEndian.Uint16(b[6:8])&0x1fff == 0 { // first (or only) fragment
			l4 = b[ihl:]
		}
	case 6:
		if len(b) < 40 {
			return p, false
		}
		p.proto = rules.Proto(b[6])
		p.src = netip.AddrFrom16([16]byte(b[8:24]))
		p.dst = netip.AddrFrom16([16]byte(b[24:40]))
		l4 = b[40:]
	default:
		return p, false
	}
	switch p.proto {
	case rules.ProtoTCP, rules.ProtoUDP, rules.ProtoSCTP:
		if len(l4) >= 4 {
			p.sport = binary.BigEndian.Uint16(l4[0:2])
			p.dport = binary.BigEndian.Uint16(l4[2:4])
		}
		if p.proto == rules.ProtoTCP && len(l4) >= 14 {
			p.tcpSeq = binary.BigEndian.Uint32(l4[4:8])
			p.tcpFlags = l4[13]
		}
	case rules.ProtoICMP, rules.ProtoICMPv6:
		if len(l4) >= 8 {
			p.icmpType = l4[0]
			id := binary.BigEndian.Uint16(l4[4:6])
			p.sport, p.dport = id, id
		}
	}
	return p, true
}

// isEcho reports whether p is an ICMP echo request (and so opens a flow) or reply.
func (p packet) isEchoRequest() bool {
	return (p.proto == rules.ProtoICMP && p.icmpType == icmp4EchoRequest) ||
		(p.proto == rules.ProtoICMPv6 && p.icmpType == icmp6EchoRequest)
}

func (p packet) isEchoReply() bool {
	return (p.proto == rules.ProtoICMP && p.icmpType == icmp4EchoReply) ||
		(p.proto == rules.ProtoICMPv6 && p.icmpType == icmp6EchoReply)
}
