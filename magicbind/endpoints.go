package magicbind

import (
	"net"
	"net/netip"
	"slices"
)

// Interfaces lists the local addresses this node may be reached at (no ports); tests pass
// one that names only 127.0.0.1.
type Interfaces func() ([]netip.Addr, error)

// SystemInterfaces lists the unicast addresses of the machine's interfaces that are up,
// without loopback and link-local ones, which mean nothing to another machine.
func SystemInterfaces() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range addrs {
		pfx, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		ip := pfx.Addr().Unmap()
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() {
			continue
		}
		out = append(out, ip)
	}
	return out, nil
}

// Loopback is the Interfaces of a node that tests run on one host: 127.0.0.1 only.
func Loopback() ([]netip.Addr, error) { return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil }

// localEndpoints pairs each address of ifs with port, skipping IPv6 ones when the socket
// is IPv4-only, keeping at most max.
func localEndpoints(ifs []netip.Addr, port uint16, v4only bool, max int) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range ifs {
		if v4only && !a.Is4() {
			continue
		}
		out = append(out, netip.AddrPortFrom(a.WithZone(""), port))
	}
	return capEndpoints(out, max)
}

// capEndpoints sorts and dedupes eps and keeps at most max.
func capEndpoints(eps []netip.AddrPort, max int) []netip.AddrPort {
	slices.SortFunc(eps, func(a, b netip.AddrPort) int { return a.Compare(b) })
	eps = slices.Compact(eps)
	if len(eps) > max {
		eps = eps[:max]
	}
	return eps
}
