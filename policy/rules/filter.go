package rules

import (
	"net/netip"
	"slices"
)

// FilterRule lets packets from Src to Dst on Ports with one of Protos in.
// Protos empty means every protocol; Ports apply only to TCP, UDP and SCTP.
type FilterRule struct {
	Src    []netip.Prefix `json:"src"`
	Dst    []netip.Prefix `json:"dst"`
	Ports  []PortRange    `json:"ports"`
	Protos []Proto        `json:"protos,omitempty"`
	// Origin names the policy entry the rule came from, e.g. "acls[0]".
	Origin string `json:"origin,omitempty"`
}

// Filter is a node's inbound packet filter: a packet passes if any rule allows
// it. Replies to the node's own connections are the data path's business
// (stateful tracking), not the filter's.
type Filter []FilterRule

// Allows reports whether a new inbound packet from src to dst is allowed.
func (f Filter) Allows(src netip.Addr, dst netip.AddrPort, proto Proto) bool {
	src, da := src.Unmap(), dst.Addr().Unmap()
	for _, r := range f {
		if r.allows(src, da, dst.Port(), proto) {
			return true
		}
	}
	return false
}

func (r FilterRule) allows(src, dst netip.Addr, port uint16, proto Proto) bool {
	if len(r.Protos) > 0 && !slices.Contains(r.Protos, proto) {
		return false
	}
	if !containsAddr(r.Src, src) || !containsAddr(r.Dst, dst) {
		return false
	}
	if !proto.HasPorts() {
		return true
	}
	for _, pr := range r.Ports {
		if pr.Contains(port) {
			return true
		}
	}
	return false
}

// ComparePrefixes is the order in which compiled rules list their sources: by address,
// then by length. Filter deltas (controlws.SrcDelta) keep it.
func ComparePrefixes(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// PortRange is an inclusive range of ports.
type PortRange struct {
	First uint16 `json:"first"`
	Last  uint16 `json:"last"`
}

// AllPorts is the range "*".
var AllPorts = PortRange{First: 0, Last: 65535}

// Contains reports whether port is in r.
func (r PortRange) Contains(port uint16) bool { return port >= r.First && port <= r.Last }

// Proto is an IP protocol number (IANA).
type Proto uint8

// IP protocols the policy names.
const (
	ProtoICMP   Proto = 1
	ProtoIGMP   Proto = 2
	ProtoTCP    Proto = 6
	ProtoUDP    Proto = 17
	ProtoGRE    Proto = 47
	ProtoESP    Proto = 50
	ProtoAH     Proto = 51
	ProtoICMPv6 Proto = 58
	ProtoSCTP   Proto = 132
)

// HasPorts reports whether the protocol has port numbers.
func (p Proto) HasPorts() bool { return p == ProtoTCP || p == ProtoUDP || p == ProtoSCTP }

// parseProto reads a protocol name or number.
