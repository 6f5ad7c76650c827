package console

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// The client address the login limits count a request under. Without trusted proxies it
// is the TCP peer and no forwarded header is read. A peer inside Options.TrustedProxies is
// a reverse proxy: the client is the rightmost address of X-Forwarded-For (else of
// Forwarded's for=) that is not itself a trusted proxy. IPv6 clients count per /64, the
// block one subscriber usually holds.

// maxForwardedHops bounds how many forwarded addresses are looked at.
const maxForwardedHops = 16

// peerAddr is the request's TCP peer address.
func peerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

// trusted reports whether a is one of the trusted proxies.
func (c *Console) trusted(a netip.Addr) bool {
	for _, p := range c.o.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientIP is the client's address as well as this server can know it (see above).
func (c *Console) clientIP(r *http.Request) netip.Addr {
	peer := peerAddr(r)
	if !peer.IsValid() || !c.trusted(peer) {
		return peer
	}
	hops := forwardedFor(r.Header)
	for i := len(hops) - 1; i >= 0; i-- {
		if !c.trusted(hops[i]) {
			return hops[i]
		}
	}
	if len(hops) > 0 {
		return hops[0] // every hop is a proxy of ours: the first is the closest we know
	}
	return peer
}

// clientAddr is clientIP as text for logs and the audit log.
func (c *Console) clientAddr(r *http.Request) string {
	if a := c.clientIP(r); a.IsValid() {
		return a.String()
	}
	return "unknown address"
}

// limitKey is the key of the client's address in the per-address limits: an IPv4 address,
// or an IPv6 address's /64.
func limitKey(a netip.Addr) string {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// forwardedFor reads the client chain a proxy appended, nearest last: X-Forwarded-For, or,
// without it, the for= parameters of Forwarded (RFC 7239). Unparsable entries end the
// chain there (everything left of them is unknown).
func forwardedFor(h http.Header) []netip.Addr {
	var raw []string
	if xs := h.Values("X-Forwarded-For"); len(xs) > 0 {
		for _, x := range xs {
			raw = append(raw, strings.Split(x, ",")...)
		}
	} else {
		for _, f := range h.Values("Forwarded") {
			for _, elem := range strings.Split(f, ",") {
				for _, pair := range strings.Split(elem, ";") {
					k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
					if ok && strings.EqualFold(k, "for") {
						raw = append(raw, forwardedNode(v))
					}
				}
			}
		}
	}
	raw = raw[max(0, len(raw)-maxForwardedHops):]
	var out []netip.Addr
	for i := len(raw) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(raw[i]))
		if err != nil {
			break
		}
		out = append(out, a.Unmap().WithZone(""))
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// forwardedNode is the address of a Forwarded for= value: "192.0.2.1", "192.0.2.1:80",
// "[2001:db8::1]:80" (quoted or not).
func forwardedNode(v string) string {
	v = strings.Trim(strings.TrimSpace(v), `"`)
	if strings.HasPrefix(v, "[") {
		if end := strings.IndexByte(v, ']'); end > 0 {
			return v[1:end]
		}
	}
	if host, _, err := net.SplitHostPort(v); err == nil {
		return host
	}
	return v
}
