package control

import (
	"net/netip"
	"sync"

	"tsconnect/policy"
	"tsconnect/policy/rules"
)

// compiled is the policy compiled for every live node at one generation of the network:
// each node's rules, and which nodes may send to it (for peer visibility).
type compiled struct {
	gen     uint64
	rules   map[int64]*rules.NodeRules
	inbound map[int64]map[int64]bool // dst → srcs its filter admits something from
}

// rulesCache holds the newest compiled form; it is rebuilt on demand when stale.
type rulesCache struct {
	mu sync.Mutex
	c  *compiled
}

// compiledLocked returns the policy compiled for the current generation, compiling it if
// needed. Callers hold s.mu (read or write).
func (s *Server) compiledLocked() *compiled {
	s.rc.mu.Lock()
	defer s.rc.mu.Unlock()
	if s.rc.c != nil && s.rc.c.gen == s.gen {
		return s.rc.c
	}
	nw := &policy.Network{}
	for _, u := range s.users {
		nw.Users = append(nw.Users, policy.User{Email: u.LoginName})
	}
	for id, ln := range s.nodes {
		if ln.loggedOut {
			continue
		}
		nw.Nodes = append(nw.Nodes, s.policyNodeLocked(id, ln))
	}
	c := &compiled{gen: s.gen, rules: make(map[int64]*rules.NodeRules, len(nw.Nodes)),
		inbound: make(map[int64]map[int64]bool, len(nw.Nodes))}
	for _, d := range nw.Nodes {
		nr := s.policy.Compile(nw, d)
		c.rules[d.ID] = nr
		c.inbound[d.ID] = admitted(nr.Filter, nw.Nodes, d.ID)
	}
	s.rc.c = c
	return c
}

// policyNodeLocked is node ln as the policy sees it. A tagged node belongs to no user.
func (s *Server) policyNodeLocked(id int64, ln *liveNode) policy.Node {
	n := policy.Node{ID: id, Name: ln.n.Name, Addresses: ln.n.Addresses, Tags: ln.n.Tags}
	if len(n.Tags) == 0 {
		n.User = s.users[ln.n.User].LoginName
		n.UserGroups = s.groups[ln.n.User]
	}
	return n
}

// admitted lists the nodes (other than self) from which f admits any packet.
func admitted(f rules.Filter, nodes []policy.Node, self int64) map[int64]bool {
	exact := map[netip.Addr]bool{}
	var wide []netip.Prefix
	for _, r := range f {
		for _, p := range r.Src {
			if p.IsSingleIP() {
				exact[p.Addr()] = true
			} else {
				wide = append(wide, p)
			}
		}
	}
	out := map[int64]bool{}
	for _, n := range nodes {
		if n.ID == self {
			continue
		}
	addrs:
		for _, a := range n.Addresses {
			if exact[a.Addr()] {
				out[n.ID] = true
				break
			}
			for _, p := range wide {
				if p.Contains(a.Addr()) {
					out[n.ID] = true
					break addrs
				}
			}
		}
	}
	return out
}

// visible reports whether nodes a and b may talk in either direction, and so see each other.
func (c *compiled) visible(a, b int64) bool { return c.inbound[a][b] || c.inbound[b][a] }

// publishAll sends every stream a new full map (after a policy change).
// Callers hold writeMu.
func (s *Server) publishAll() {
	defer s.changes.notify()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, sts := range s.streams {
		for st := range sts {
			st.markFull()
		}
	}
}
