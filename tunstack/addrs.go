package tunstack

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// SetAddresses makes the stack's own addresses exactly addrs, each a single address
// (/32 or /128). Addresses kept from before are not touched, so connections on them
// survive; connections on removed addresses stop working.
func (s *Stack) SetAddresses(addrs []netip.Prefix) error {
	if s.closed.Load() {
		return net.ErrClosed
	}
	want := make([]netip.Prefix, 0, len(addrs))
	for _, p := range addrs {
		if !p.IsValid() || !p.IsSingleIP() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			return fmt.Errorf("tunstack: address %v is not a single IPv4 (/32) or IPv6 (/128) address", p)
		}
		if !slices.Contains(want, p) {
			want = append(want, p)
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range slices.Clone(s.addrs) {
		if slices.Contains(want, p) {
			continue
		}
		if err := s.stack.RemoveAddress(nicID, tcpip.AddrFromSlice(p.Addr().AsSlice())); err != nil {
			return fmt.Errorf("tunstack: remove address %v: %v", p, err)
		}
		s.addrs = slices.DeleteFunc(s.addrs, func(q netip.Prefix) bool { return q == p })
	}
	for _, p := range want {
		if slices.Contains(s.addrs, p) {
			continue
		}
		proto := header.IPv6ProtocolNumber
		if p.Addr().Is4() {
			proto = header.IPv4ProtocolNumber
		}
		pa := tcpip.ProtocolAddress{
			Protocol: proto,
			AddressWithPrefix: tcpip.AddressWithPrefix{
				Address:   tcpip.AddrFromSlice(p.Addr().AsSlice()),
				PrefixLen: p.Bits(),
			},
		}
		if err := s.stack.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
			return fmt.Errorf("tunstack: add address %v: %v", p, err)
		}
		s.addrs = append(s.addrs, p)
	}
	return nil
}

// Addresses returns the stack's own addresses, IPv4 first.
func (s *Stack) Addresses() []netip.Prefix {
	s.mu.Lock()
	addrs := slices.Clone(s.addrs)
	s.mu.Unlock()
	slices.SortFunc(addrs, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return addrs
}
