package policy

import (
	"net/netip"
	"slices"
	"strings"

	"tsconnect/policy/rules"
)

// Compiler compiles one policy against one network for any number of destination nodes.
// It resolves every rule's sources once (O(rules × nodes)), so compiling for each node of
// the network costs O(rules) plus the size of what that node's rules hold, not
// O(rules × nodes) per node. Nodes' filters share the source lists they have in common:
// callers must not modify the rules it returns. A Compiler is not safe for concurrent use.
type Compiler struct {
	p  *Policy
	nw *Network
	// netSrc[i] is net rule i's deduplicated sources, for destinations it applies to fully.
	netSrc [][]netip.Prefix
	// netSelf[i] maps an owner (lower case) to rule i's sources among that owner's own
	// nodes, for destinations it reaches through autogroup:self; built when first needed.
	netSelf []map[string][]netip.Prefix
	// sshSrc[i] is the nodes (indices in nw.Nodes) ssh rule i names as sources; sshSelf[i]
	// the same by owner, for autogroup:self.
	sshSrc  [][]int
	sshSelf []map[string][]int
}

// NewCompiler resolves p's rules against nw (nil means an empty network).
func (p *Policy) NewCompiler(nw *Network) *Compiler {
	if nw == nil {
		nw = &Network{}
	}
	c := &Compiler{p: p, nw: nw, netSrc: make([][]netip.Prefix, len(p.net)), netSelf: make([]map[string][]netip.Prefix, len(p.net)),
		sshSrc: make([][]int, len(p.ssh)), sshSelf: make([]map[string][]int, len(p.ssh))}
	for i, r := range p.net {
		var src []netip.Prefix
		all := false
		for _, a := range r.src {
			switch a.kind {
			case akAll:
				all = true
				src = append(src, netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0"))
			case akPrefix:
				src = append(src, a.prefix)
			}
		}
		if !all { // "*" covers every node's addresses already
			// IPv4 before IPv6: nodes' addresses, by ID, then come (nearly) sorted.
			var v6 []netip.Prefix
			for _, s := range nw.Nodes {
				if p.anyMatches(r.src, s) {
					for _, ap := range s.Addresses {
						if ap.Addr().Is4() {
							src = append(src, hostPrefix(ap.Addr()))
						} else {
							v6 = append(v6, hostPrefix(ap.Addr()))
						}
					}
				}
			}
			src = append(src, v6...)
		}
		c.netSrc[i] = dedupe(src)
	}
	for i, r := range p.ssh {
		for j, s := range nw.Nodes {
			if !p.anyMatches(r.src, s) {
				continue
			}
			c.sshSrc[i] = append(c.sshSrc[i], j)
			if o := s.owner(); o != "" {
				if c.sshSelf[i] == nil {
					c.sshSelf[i] = map[string][]int{}
				}
				k := strings.ToLower(o)
				c.sshSelf[i][k] = append(c.sshSelf[i][k], j)
			}
		}
	}
	return c
}

// Compile builds the rules node dst enforces.
func (c *Compiler) Compile(dst Node) *rules.NodeRules {
	f := c.compileFilter(dst)
	return &rules.NodeRules{Filter: f, SSH: c.compileSSH(dst, f)}
}

// compileFilter builds d's inbound filter.
func (c *Compiler) compileFilter(d Node) rules.Filter {
	var f rules.Filter
	for i, r := range c.p.net {
		applies, selfOnly, dst := c.p.netApplies(r, d)
		if !applies || len(dst) == 0 {
			continue
		}
		src := c.netSrc[i]
		if selfOnly {
			src = c.selfSources(i, d.owner())
		}
		if len(src) == 0 {
			continue
		}
		f = append(f, rules.FilterRule{Src: src, Dst: dst, Ports: r.ports, Protos: r.protos, Origin: r.field})
	}
	return f
}

// selfSources is net rule i's sources among owner's own nodes.
func (c *Compiler) selfSources(i int, owner string) []netip.Prefix {
	if c.netSelf[i] == nil {
		by := map[string][]netip.Prefix{}
		for _, s := range c.nw.Nodes {
			if o := s.owner(); o != "" && c.p.anyMatches(c.p.net[i].src, s) {
				k := strings.ToLower(o)
				for _, ap := range s.Addresses {
					by[k] = append(by[k], hostPrefix(ap.Addr()))
				}
			}
		}
		for k, v := range by {
			by[k] = dedupe(v)
		}
		c.netSelf[i] = by
	}
	return c.netSelf[i][strings.ToLower(owner)]
}

// compileSSH builds d's SSH rules; f is d's compiled packet filter.
func (c *Compiler) compileSSH(d Node, f rules.Filter) []rules.SSHRule {
	p := c.p
	var out []rules.SSHRule
	for _, i := range p.sshOrder() {
		r := p.ssh[i]
		applies, selfOnly := p.sshApplies(r, d)
		if !applies {
			continue
		}
		srcs := c.sshSrc[i]
		if selfOnly {
			srcs = c.sshSelf[i][strings.ToLower(d.owner())]
		}
		base := r.userMap(Node{}) // the map for sources without a localpart match
		group := map[string]int{} // user map (by localpart) -> index in out
		for _, j := range srcs {
			s := c.nw.Nodes[j]
			users, key := base, ""
			if len(r.localparts) > 0 {
				users = r.userMap(s)
				if len(users) > len(base) {
					key = s.owner()[:strings.LastIndexByte(s.owner(), '@')]
				}
			}
			if len(users) == 0 {
				continue
			}
			var addrs []netip.Addr
			for _, sa := range s.Addresses {
				for _, da := range d.Addresses {
					if sa.Addr().BitLen() == da.Addr().BitLen() &&
						f.Allows(sa.Addr(), netip.AddrPortFrom(da.Addr(), 22), rules.ProtoTCP) {
						addrs = append(addrs, sa.Addr().Unmap())
						break
					}
				}
			}
			if len(addrs) == 0 {
				continue
			}
			// Sources with the same user map share one compiled rule.
			j, ok := group[key]
			if !ok {
				out = append(out, p.compiled(r, users))
				j = len(out) - 1
				group[key] = j
			}
			out[j].Principals = append(out[j].Principals, addrs...)
		}
	}
	return out
}

// Affects reports whether node n (as it is, was, or would be) counts in the rules some
// other node d gets, in a way that depends on d: whether n matches the sources of a rule
// that applies to d. An added, changed or removed node n changes only n's own rules and
// those of the nodes d for which Affects(n, d) holds (for n's old and new forms). A rule
// whose sources hold "*" (and that does not reach d through autogroup:self) lists no
// node, so a node matching it affects nobody else's rules.
func (p *Policy) Affects(n, d Node) bool {
	for _, r := range p.net {
		if !p.anyMatches(r.src, n) {
			continue
		}
		applies, selfOnly, _ := p.netApplies(r, d)
		if !applies {
			continue
		}
		if selfOnly {
			if n.owner() != "" && strings.EqualFold(n.owner(), d.owner()) {
				return true
			}
			continue
		}
		if !slices.ContainsFunc(r.src, func(a alias) bool { return a.kind == akAll }) {
			return true
		}
	}
	for _, r := range p.ssh {
		if !p.anyMatches(r.src, n) {
			continue
		}
		applies, selfOnly := p.sshApplies(r, d)
		if applies && (!selfOnly || (n.owner() != "" && strings.EqualFold(n.owner(), d.owner()))) {
			return true
		}
	}
	return false
}
