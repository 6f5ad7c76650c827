package policy

import (
	"net/netip"
	"slices"
	"strings"

	"tsconnect/policy/rules"
)

// netApplies says whether rule r lets anything into d: fully, or (autogroup:self)
// only from d's owner's own devices; dst is the part of d's addresses it covers.
func (p *Policy) netApplies(r netRule, d Node) (applies, selfOnly bool, dst []netip.Prefix) {
	normal, self := false, false
	for _, a := range r.dst {
		switch {
		case a.kind == akSelf:
			self = self || d.owner() != ""
		case a.kind == akPrefix:
			for _, ap := range d.Addresses {
				if a.prefix.Contains(ap.Addr()) {
					normal = true
					dst = append(dst, hostPrefix(ap.Addr()))
				}
			}
		case p.matches(a, d):
			normal = true
			for _, ap := range d.Addresses {
				dst = append(dst, hostPrefix(ap.Addr()))
			}
		}
	}
	if normal {
		return true, false, dedupe(dst)
	}
	if self {
		for _, ap := range d.Addresses {
			dst = append(dst, hostPrefix(ap.Addr()))
		}
		return true, true, dedupe(dst)
	}
	return false, false, nil
}

// netSrcMatches reports whether node s is a source of r towards d.
func (p *Policy) netSrcMatches(r netRule, s, d Node, selfOnly bool) bool {
	if selfOnly && (s.owner() == "" || !strings.EqualFold(s.owner(), d.owner())) {
		return false
	}
	return p.anyMatches(r.src, s)
}

// netAllows reports by identity whether the network rules let s open a
// connection to port of d with proto.
func (p *Policy) netAllows(s, d Node, proto rules.Proto, port uint16) bool {
	for _, r := range p.net {
		applies, selfOnly, _ := p.netApplies(r, d)
		if !applies || !p.netSrcMatches(r, s, d, selfOnly) {
			continue
		}
		if len(r.protos) > 0 && !slices.Contains(r.protos, proto) {
			continue
		}
		if !proto.HasPorts() {
			return true
		}
		for _, pr := range r.ports {
			if pr.Contains(port) {
				return true
			}
		}
	}
	return false
}

func hostPrefix(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen())
}

// byAddr orders prefixes by address, then by length: the order of compiled source lists.
var byAddr = rules.ComparePrefixes

// dedupe sorts ps and removes duplicates and prefixes covered by others.
func dedupe(ps []netip.Prefix) []netip.Prefix {
	if !slices.IsSortedFunc(ps, byAddr) {
		slices.SortFunc(ps, byAddr)
	}
	out := make([]netip.Prefix, 0, len(ps))
	var wide []netip.Prefix // wide: kept prefixes that cover more than one address
	for _, p := range ps {
		if len(out) > 0 && out[len(out)-1] == p {
			continue
		}
		covered := false
		for _, q := range wide {
			if q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
				covered = true
				break
			}
		}
		if covered {
			continue
		}
		out = append(out, p)
		if p.Bits() < p.Addr().BitLen() {
			wide = append(wide, p)
		}
	}
	return out
}

// ReachesTCP reports by identity whether the acls let node src open a TCP connection to port
// of node dst (the console's "VNC…": a browser node of src's user to a machine's port 5900).
func (p *Policy) ReachesTCP(src, dst Node, port uint16) bool {
	return p.netAllows(src, dst, rules.ProtoTCP, port)
}
