package policy

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"tsconnect/policy/rules"
)

// Compiler compiles one policy against one network for any number of destination nodes.
// It resolves every rule's sources once (O(rules × nodes)), so compiling for each node of
// the network costs O(rules) plus the size of what that node's rules hold, not
// O(rules × nodes) per node. Nodes' filters share the source lists they have in common:
// callers must not modify the rules it returns. Update brings it up to date with a change
// of the network in time of the change. A Compiler is not safe for concurrent use.
type Compiler struct {
	p *Policy
	// netSrc[i] is net rule i's deduplicated sources, for destinations it applies to fully.
	netSrc [][]netip.Prefix
	// netSelf[i] maps an owner (lower case) to rule i's sources among that owner's own
	// nodes, for destinations it reaches through autogroup:self (nil for rules without it).
	netSelf []map[string][]netip.Prefix
	// sshSrc[i] is the nodes ssh rule i names as sources, by ID; sshSelf[i] the same by
	// owner, for autogroup:self.
	sshSrc  [][]Node
	sshSelf []map[string][]Node
	// sshRec[i] is the nodes ssh rule i names as recorders, by ID.
	sshRec [][]Node
	// sshApp holds, for each ssh rule that names recorders, the nodes it applies to (by ID):
	// the nodes its recorders accept recordings from.
	sshApp [][]Node
	// The destinations each rule applies to, for Update: fully (netDst, sshDst) or only
	// through autogroup:self, by owner (netSelfDst, sshSelfDst).
	netDst, sshDst         []map[int64]struct{}
	netSelfDst, sshSelfDst []map[string]map[int64]struct{}
}

// NewCompiler resolves p's rules against nw (nil means an empty network).
func (p *Policy) NewCompiler(nw *Network) *Compiler {
	if nw == nil {
		nw = &Network{}
	}
	c := &Compiler{p: p, netSrc: make([][]netip.Prefix, len(p.net)), netSelf: make([]map[string][]netip.Prefix, len(p.net)),
		sshSrc: make([][]Node, len(p.ssh)), sshSelf: make([]map[string][]Node, len(p.ssh)), sshRec: make([][]Node, len(p.ssh)), sshApp: make([][]Node, len(p.ssh)),
		netDst: make([]map[int64]struct{}, len(p.net)), sshDst: make([]map[int64]struct{}, len(p.ssh)),
		netSelfDst: make([]map[string]map[int64]struct{}, len(p.net)), sshSelfDst: make([]map[string]map[int64]struct{}, len(p.ssh))}
	for i, r := range p.net {
		c.netDst[i], c.netSelfDst[i] = map[int64]struct{}{}, map[string]map[int64]struct{}{}
		if slices.ContainsFunc(r.dst, func(a alias) bool { return a.kind == akSelf }) {
			c.netSelf[i] = map[string][]netip.Prefix{}
		}
		c.netSrc[i] = c.resolveSrc(r, nw.Nodes)
	}
	for i := range p.ssh {
		c.sshDst[i], c.sshSelfDst[i] = map[int64]struct{}{}, map[string]map[int64]struct{}{}
		c.sshSelf[i] = map[string][]Node{}
	}
	for _, s := range nw.Nodes {
		c.add(s)
		o := strings.ToLower(s.owner())
		for i, r := range p.net {
			if c.netSelf[i] != nil && o != "" && p.anyMatches(r.src, s) {
				for _, ap := range s.Addresses {
					c.netSelf[i][o] = append(c.netSelf[i][o], hostPrefix(ap.Addr()))
				}
			}
		}
	}
	for i := range p.net {
		for k, v := range c.netSelf[i] {
			c.netSelf[i][k] = dedupe(v)
		}
	}
	return c
}

// resolveSrc lists net rule r's sources among nodes, deduplicated.
func (c *Compiler) resolveSrc(r netRule, nodes []Node) []netip.Prefix {
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
		for _, s := range nodes {
			if c.p.anyMatches(r.src, s) {
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
	return dedupe(src)
}

// add records node s in the per-node indexes: the ssh sources it is and the rules that
// apply to it.
func (c *Compiler) add(s Node) {
	p, o := c.p, strings.ToLower(s.owner())
	for i, r := range p.net {
		if applies, selfOnly, _ := p.netApplies(r, s); applies && selfOnly {
			addID(c.netSelfDst[i], o, s.ID)
		} else if applies {
			c.netDst[i][s.ID] = struct{}{}
		}
	}
	for i, r := range p.ssh {
		if applies, selfOnly := p.sshApplies(r, s); applies && selfOnly {
			addID(c.sshSelfDst[i], o, s.ID)
		} else if applies {
			c.sshDst[i][s.ID] = struct{}{}
		}
		if p.anyMatches(r.src, s) {
			c.sshSrc[i] = insertNode(c.sshSrc[i], s)
			if o != "" {
				c.sshSelf[i][o] = insertNode(c.sshSelf[i][o], s)
			}
		}
		if p.anyMatches(r.recorder, s) {
			c.sshRec[i] = insertNode(c.sshRec[i], s)
		}
		if applies, _ := p.sshApplies(r, s); applies && len(r.recorder) > 0 {
			c.sshApp[i] = insertNode(c.sshApp[i], s)
		}
	}
}

// addID adds id to m[k].
func addID(m map[string]map[int64]struct{}, k string, id int64) {
	if m[k] == nil {
		m[k] = map[int64]struct{}{}
	}
	m[k][id] = struct{}{}
}

// insertNode puts n into ns, sorted by ID (last, when it comes in order).
func insertNode(ns []Node, n Node) []Node {
	if len(ns) == 0 || ns[len(ns)-1].ID < n.ID {
		return append(ns, n)
	}
	i, _ := slices.BinarySearchFunc(ns, n.ID, byID)
	return slices.Insert(ns, i, n)
}

// Compile builds the rules node dst enforces.
func (c *Compiler) Compile(dst Node) *rules.NodeRules {
	f := c.compileFilter(dst)
	return &rules.NodeRules{Filter: f, SSH: c.compileSSH(dst, f), RecordFrom: c.recordFrom(dst)}
}

// recordFrom lists the addresses of the nodes that an ssh rule naming d as recorder
// applies to, sorted, at most rules.MaxRecordFrom; nil when d records for none.
func (c *Compiler) recordFrom(d Node) []netip.Addr {
	var out []netip.Addr
	for i := range c.p.ssh {
		if _, ok := slices.BinarySearchFunc(c.sshRec[i], d.ID, byID); !ok {
			continue
		}
		for _, n := range c.sshApp[i] {
			if n.ID == d.ID {
				continue
			}
			for _, ap := range n.Addresses {
				out = append(out, ap.Addr().Unmap())
			}
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	out = slices.Compact(out)
	return out[:min(len(out), rules.MaxRecordFrom)]
}

// byID orders a node against an ID.
func byID(x Node, id int64) int { return cmp.Compare(x.ID, id) }

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
		rec := c.recorders(i, d)
		group := map[string]int{} // user map (by localpart) -> index in out
		for _, s := range srcs {
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
				out[j].Recorders = rec
				group[key] = j
			}
			out[j].Principals = append(out[j].Principals, addrs...)
		}
	}
	return out
}

// recorders lists ssh rule i's recorder nodes as d dials them: by node ID, each its first
// address of the family of d's first address it shares, at RecorderPort; at most
// MaxRecorders (a rule names at most that many, but a hosts range may hold more nodes).
func (c *Compiler) recorders(i int, d Node) []netip.AddrPort {
	var out []netip.AddrPort
	for _, n := range c.sshRec[i] {
		if len(out) == rules.MaxRecorders {
			break
		}
	addr:
		for _, da := range d.Addresses {
			for _, na := range n.Addresses {
				if na.Addr().BitLen() == da.Addr().BitLen() {
					out = append(out, netip.AddrPortFrom(na.Addr().Unmap(), rules.RecorderPort))
					break addr
				}
			}
		}
	}
	return out
}

// Affects reports whether node n (as it is, was, or would be) counts in the rules some
// other node d gets, in a way that depends on d: whether n matches the sources of a rule
// that applies to d. An added, changed or removed node n changes only n's own rules and
// those of the nodes d for which Affects(n, d) holds (for n's old and new forms). A rule
// whose sources hold "*" (and that does not reach d through autogroup:self) lists no
// node, so a node matching it affects nobody else's rules. A node an ssh rule names as
// recorder affects every node the rule applies to.
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
		if p.anyMatches(r.recorder, n) {
			if applies, _ := p.sshApplies(r, d); applies {
				return true // a recorder of a rule d enforces
			}
		}
		if p.anyMatches(r.recorder, d) {
			if applies, _ := p.sshApplies(r, n); applies {
				return true // a node d records for (RecordFrom)
			}
		}
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
