package control

import (
	"net/netip"
)

// sourceKey is what per-address limits count by: the client's IPv4 address, or the /64 of
// its IPv6 address (one site's allocation). An unparsable address counts as itself.
func sourceKey(remoteAddr string) string {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	a := ap.Addr().Unmap()
	if a.Is6() {
		p, _ := a.WithZone("").Prefix(64)
		return p.String()
	}
	return a.String()
}
