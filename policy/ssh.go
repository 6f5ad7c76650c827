package policy

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Action is what an SSH rule or verdict says about a login.
type Action string

// SSH actions.
const (
	Accept Action = "accept" // log in
	Check  Action = "check"  // log in after the user re-authenticates
	Reject Action = "reject" // refuse
)

// SSHRule is one compiled SSH rule for a destination node. The agent tries
// its node's rules in order; the first whose Principals contain the source
// address and whose Users map the requested user decides.
type SSHRule struct {
	// Principals are the overlay addresses of the source nodes the rule admits
	// (only addresses the packet filter lets reach port 22).
	Principals []netip.Addr `json:"principals"`
	// Users maps a requested login to the local account: an exact name wins
	// over "*"; the value "=" means the requested name itself (never root);
	// "" means refused.
	Users       map[string]string `json:"users"`
	Action      Action            `json:"action"`
	CheckPeriod time.Duration     `json:"checkPeriod,omitempty"` // check rules: 0 means every login
	AcceptEnv   []string          `json:"acceptEnv,omitempty"`   // patterns with * and ?
	Rule        int               `json:"rule"`                  // index in the policy's ssh section
	Origin      string            `json:"origin"`                // e.g. "ssh[1] (policy.hujson:14:5)"
}

// Verdict is the outcome of one SSH login attempt.
type Verdict struct {
	Action      Action
	LocalUser   string        // the account to log in as; "" on reject
	Rule        int           // index in the ssh section of the deciding rule; -1 if none
	Origin      string        // the deciding rule, for logs
	Reason      string        // a sentence fit for an SSH banner
	CheckPeriod time.Duration // for Check: how long a re-authentication is valid; 0 = every login
	AcceptEnv   []string
}

// Reasons for refusing a login, as shown in SSH banners.
const (
	ReasonNotPermitted = "not permitted to this node"
)

// ReasonUser is the refusal for a requested user no rule maps.
func ReasonUser(user string) string {
	return fmt.Sprintf("policy does not permit SSH as user %q", user)
}

// ReasonNoLocalUser is the refusal for a mapped account that does not exist.
func ReasonNoLocalUser(user string) string { return fmt.Sprintf("local user %q not found", user) }

// AcceptsEnv reports whether the client may set environment variable name.
func (v Verdict) AcceptsEnv(name string) bool {
	for _, p := range v.AcceptEnv {
		if globMatch(p, name) {
			return true
		}
	}
	return false
}

func globMatch(pat, s string) bool {
	if pat == "" {
		return s == ""
	}
	switch pat[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if globMatch(pat[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && globMatch(pat[1:], s[1:])
	}
	return s != "" && s[0] == pat[0] && globMatch(pat[1:], s[1:])
}

// mapUser applies a rule's user map to a requested login.
func mapUser(m map[string]string, req string) (string, bool) {
	if req == "" {
		return "", false
	}
	v, ok := m[req]
	if !ok {
		if req == "root" {
			return "", false // root only when listed
		}
		v, ok = m["*"]
	}
	if !ok || v == "" {
		return "", false
	}
	if v == "=" {
		if req == "root" {
			return "", false
		}
		v = req
	}
	return v, true
}

// decide runs first-match over rules already filtered to the source.
func decide(rules []SSHRule, req string, lookupLocalUser func(string) bool) Verdict {
	if len(rules) == 0 {
		return Verdict{Action: Reject, Rule: -1, Reason: ReasonNotPermitted}
	}
	for _, r := range rules {
		local, ok := mapUser(r.Users, req)
		if !ok {
			continue
		}
		v := Verdict{Action: r.Action, LocalUser: local, Rule: r.Rule, Origin: r.Origin, AcceptEnv: r.AcceptEnv}
		if lookupLocalUser != nil && !lookupLocalUser(local) {
			return Verdict{Action: Reject, Rule: r.Rule, Origin: r.Origin, Reason: ReasonNoLocalUser(local)}
		}
		if r.Action == Check {
			v.CheckPeriod = r.CheckPeriod
			v.Reason = fmt.Sprintf("re-authentication required to log in as %q (%s)", local, periodText(r.CheckPeriod))
		} else {
			v.Reason = fmt.Sprintf("permitted to log in as %q", local)
		}
		return v
	}
	return Verdict{Action: Reject, Rule: -1, Reason: ReasonUser(req)}
}

func periodText(d time.Duration) string {
	switch {
	case d == 0:
		return "on every login"
	case d%time.Hour == 0:
		return fmt.Sprintf("valid for %dh", d/time.Hour)
	}
	return "valid for " + d.String()
}

// SSHVerdict decides a login to this node from overlay address src as user
// req. lookupLocalUser, if non-nil, reports whether a local account exists.
func (nr *NodeRules) SSHVerdict(src netip.Addr, req string, lookupLocalUser func(name string) bool) Verdict {
	src = src.Unmap()
	var cand []SSHRule
	for _, r := range nr.SSH {
		if slices.Contains(r.Principals, src) {
			cand = append(cand, r)
		}
	}
	return decide(cand, req, lookupLocalUser)
}

// sshOrder lists the ssh rules as enforced: check rules first, then accept
// rules, each in file order.
func (p *Policy) sshOrder() []int {
	var out []int
	for _, act := range []Action{Check, Accept} {
		for i, r := range p.ssh {
			if r.action == act {
				out = append(out, i)
			}
		}
	}
	return out
}

// sshApplies says whether r names d as destination, and whether only via autogroup:self.
func (p *Policy) sshApplies(r sshRule, d Node) (applies, selfOnly bool) {
	self := false
	for _, a := range r.dst {
		if a.kind == akSelf {
			self = self || d.owner() != ""
		} else if p.matches(a, d) {
			return true, false
		}
	}
	return self, self
}

func (p *Policy) sshSrcMatches(r sshRule, s, d Node, selfOnly bool) bool {
	if selfOnly && (s.owner() == "" || !strings.EqualFold(s.owner(), d.owner())) {
		return false
	}
	return p.anyMatches(r.src, s)
}

// userMap is r's map of requested to local users for logins from s.
func (r sshRule) userMap(s Node) map[string]string {
	m := map[string]string{}
	if r.nonroot {
		m["*"], m["root"] = "=", ""
	}
	for _, n := range r.names {
		m[n] = n
	}
	if r.root {
		m["root"] = "root"
	}
	if owner := s.owner(); owner != "" {
		i := strings.LastIndexByte(owner, '@')
		for _, dom := range r.localparts {
			lp := owner[:max(i, 0)]
			if i > 0 && strings.EqualFold(owner[i+1:], dom) && lp != "root" && validLocalUser(lp) {
				m[lp] = lp
			}
		}
	}
	return m
}

func (p *Policy) origin(r sshRule) string {
	line, col := lineCol(p.src, r.off)
	return fmt.Sprintf("ssh[%d] (%s:%d:%d)", r.index, p.file, line, col)
}

func (p *Policy) compiled(r sshRule, users map[string]string) SSHRule {
	c := SSHRule{Users: users, Action: r.action, AcceptEnv: r.acceptEnv, Rule: r.index, Origin: p.origin(r)}
	if r.action == Check {
		c.CheckPeriod = r.checkPeriod
	}
	return c
}

// compileSSH builds d's SSH rules; f is d's compiled packet filter.
func (p *Policy) compileSSH(nw *Network, d Node, f Filter) []SSHRule {
	var out []SSHRule
	for _, i := range p.sshOrder() {
		r := p.ssh[i]
		applies, selfOnly := p.sshApplies(r, d)
		if !applies {
			continue
		}
		base := r.userMap(Node{}) // the map for sources without a localpart match
		group := map[string]int{} // user map (by localpart) -> index in out
		for _, s := range nw.Nodes {
			if !p.sshSrcMatches(r, s, d, selfOnly) {
				continue
			}
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
						f.Allows(sa.Addr(), netip.AddrPortFrom(da.Addr(), 22), ProtoTCP) {
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

// SSHAccess decides, from identities alone, a login from node src to node dst
// as user req, exactly as dst's compiled rules would (port 22 must be allowed
// by the network rules too). lookupLocalUser, if non-nil, reports whether a
// local account exists on dst. src needs no addresses unless the policy names
// addresses.
func (p *Policy) SSHAccess(src, dst Node, req string, lookupLocalUser func(name string) bool) Verdict {
	return decide(p.sshCandidates(src, dst), req, lookupLocalUser)
}

func (p *Policy) sshCandidates(src, dst Node) []SSHRule {
	if !p.netAllows(src, dst, ProtoTCP, 22) {
		return nil
	}
	var cand []SSHRule
	for _, i := range p.sshOrder() {
		r := p.ssh[i]
		applies, selfOnly := p.sshApplies(r, dst)
		if !applies || !p.sshSrcMatches(r, src, dst, selfOnly) {
			continue
		}
		if users := r.userMap(src); len(users) > 0 {
			cand = append(cand, p.compiled(r, users))
		}
	}
	return cand
}

// Login is a local account a source may log in as, and how.
type Login struct {
	User   string // a local account name, or "*" for any account but root
	Action Action // Accept or Check
}

// SSHLogins lists the local accounts node src may log in as on node dst
// (for a user picker), in rule order; "*" stands for any non-root account.
func (p *Policy) SSHLogins(src, dst Node) []Login {
	var out []Login
	seen := map[string]bool{}
	for _, r := range p.sshCandidates(src, dst) {
		keys := slices.Sorted(maps.Keys(r.Users))
		for _, k := range keys {
			if seen[k] {
				continue
			}
			seen[k] = true
			if _, ok := mapUser(r.Users, k); ok || (k == "*" && r.Users[k] != "") {
				out = append(out, Login{User: k, Action: r.Action})
			}
		}
	}
	return out
}
