package policy

import (
	"net/netip"
	"slices"
	"strings"
)

// Update brings c up to date with a change of its network, in time proportional to the
// change (and to the source lists it alters), not to the network: gone holds the views
// of the changed nodes before the change (those that had one), now their views after it
// (those that still have one: a removed node has none). It returns the other nodes whose
// rules may have changed, as Affects names them; the changed nodes' own rules must be
// compiled again too. Rules compiled before stay valid for the network they were
// compiled against: Update never writes into a source list it handed out.
func (c *Compiler) Update(gone, now []Node) (affected []int64) {
	p := c.p
	seen := map[int64]bool{}
	note := func(ids map[int64]struct{}) {
		for id := range ids {
			if !seen[id] {
				seen[id] = true
				affected = append(affected, id)
			}
		}
	}
	netRm, netAdd := make([][]netip.Prefix, len(p.net)), make([][]netip.Prefix, len(p.net))
	type ownerRule struct {
		rule  int
		owner string
	}
	selfRm, selfAdd := map[ownerRule][]netip.Prefix{}, map[ownerRule][]netip.Prefix{}
	visit := func(v Node, add bool) {
		o := strings.ToLower(v.owner())
		for i, r := range p.net {
			if !p.anyMatches(r.src, v) {
				continue
			}
			if !r.srcAll() {
				note(c.netDst[i])
				for _, ap := range v.Addresses {
					if add {
						netAdd[i] = append(netAdd[i], hostPrefix(ap.Addr()))
					} else {
						netRm[i] = append(netRm[i], hostPrefix(ap.Addr()))
					}
				}
			}
			if o != "" {
				note(c.netSelfDst[i][o])
				if c.netSelf[i] != nil {
					k := ownerRule{i, o}
					for _, ap := range v.Addresses {
						if add {
							selfAdd[k] = append(selfAdd[k], hostPrefix(ap.Addr()))
						} else {
							selfRm[k] = append(selfRm[k], hostPrefix(ap.Addr()))
						}
					}
				}
			}
		}
		for i, r := range p.ssh {
			if p.anyMatches(r.src, v) {
				note(c.sshDst[i])
				if o != "" {
					note(c.sshSelfDst[i][o])
				}
			}
			if p.anyMatches(r.recorder, v) { // every destination of the rule lists it
				note(c.sshDst[i])
				for _, ids := range c.sshSelfDst[i] {
					note(ids)
				}
			}
			if applies, _ := p.sshApplies(r, v); applies && len(r.recorder) > 0 {
				for _, n := range c.sshRec[i] { // its recorders list v (RecordFrom)
					note(map[int64]struct{}{n.ID: {}})
				}
			}
		}
	}
	for _, v := range gone {
		visit(v, false)
		c.remove(v)
	}
	for _, v := range now {
		visit(v, true)
		c.add(v)
	}
	for i, r := range p.net {
		if len(netRm[i])+len(netAdd[i]) > 0 {
			c.netSrc[i] = patchSources(c.netSrc[i], netRm[i], netAdd[i], r.explicitSrc())
		}
	}
	for k := range mergeKeys(selfRm, selfAdd) {
		if l := patchSources(c.netSelf[k.rule][k.owner], selfRm[k], selfAdd[k], nil); len(l) > 0 {
			c.netSelf[k.rule][k.owner] = l
		} else {
			delete(c.netSelf[k.rule], k.owner)
		}
	}
	return affected
}

// mergeKeys is the set of keys of a and b.
func mergeKeys[K comparable, V any](a, b map[K]V) map[K]bool {
	out := make(map[K]bool, len(a)+len(b))
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// remove takes node view s out of the per-node indexes (its self sources are patched by
// Update).
func (c *Compiler) remove(s Node) {
	o := strings.ToLower(s.owner())
	is := func(n Node) bool { return n.ID == s.ID }
	for i := range c.p.net {
		delete(c.netDst[i], s.ID)
		delete(c.netSelfDst[i][o], s.ID)
	}
	for i := range c.p.ssh {
		delete(c.sshDst[i], s.ID)
		delete(c.sshSelfDst[i][o], s.ID)
		c.sshSrc[i] = slices.DeleteFunc(c.sshSrc[i], is)
		c.sshRec[i] = slices.DeleteFunc(c.sshRec[i], is)
		c.sshApp[i] = slices.DeleteFunc(c.sshApp[i], is)
		if l := slices.DeleteFunc(c.sshSelf[i][o], is); len(l) > 0 {
			c.sshSelf[i][o] = l
		} else {
			delete(c.sshSelf[i], o)
		}
	}
}

// srcAll reports whether r's sources hold "*", which lists no node.
func (r netRule) srcAll() bool {
	return slices.ContainsFunc(r.src, func(a alias) bool { return a.kind == akAll })
}

// explicitSrc is the prefixes r's sources name themselves (not through a node).
func (r netRule) explicitSrc() []netip.Prefix {
	var out []netip.Prefix
	for _, a := range r.src {
		if a.kind == akPrefix {
			out = append(out, a.prefix)
		}
	}
	return out
}

// patchSources is the source list l (sorted, deduplicated) without the node addresses rm
// and with the node addresses add, as dedupe would list them given the rule's own
// prefixes explicit: an address one of them names stays, one a wider one covers is not
// listed. l itself is never written; an unchanged list is returned as l.
func patchSources(l, rm, add []netip.Prefix, explicit []netip.Prefix) []netip.Prefix {
	slices.SortFunc(rm, byAddr)
	slices.SortFunc(add, byAddr)
	add = slices.Compact(add)
	add = slices.DeleteFunc(add, func(a netip.Prefix) bool {
		for _, q := range explicit {
			if q.Bits() < a.Bits() && q.Contains(a.Addr()) {
				return true // covered: dedupe drops it
			}
		}
		return false
	})
	drop := func(x netip.Prefix) bool {
		if _, ok := slices.BinarySearchFunc(rm, x, byAddr); !ok {
			return false
		}
		return !slices.Contains(explicit, x) // the rule names it itself: it stays
	}
	out := make([]netip.Prefix, 0, len(l)+len(add))
	changed := false
	i, j := 0, 0
	for i < len(l) || j < len(add) {
		switch {
		case j == len(add) || i < len(l) && byAddr(l[i], add[j]) < 0:
			if drop(l[i]) {
				changed = true
			} else {
				out = append(out, l[i])
			}
			i++
		case i == len(l) || byAddr(add[j], l[i]) < 0:
			out = append(out, add[j])
			changed = true
			j++
		default:
			out = append(out, l[i])
			i, j = i+1, j+1
		}
	}
	if !changed {
		return l
	}
	return out
}
