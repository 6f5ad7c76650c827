package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"tsconnect/policy/rules"
)

// sshOrder lists the ssh rules as enforced: check rules first, then accept
// rules, each in file order.
func (p *Policy) sshOrder() []int {
	var out []int
	for _, act := range []rules.Action{rules.Check, rules.Accept} {
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
			if i > 0 && strings.EqualFold(owner[i+1:], dom) && lp != "root" && ValidLocalUser(lp) {
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

func (p *Policy) compiled(r sshRule, users map[string]string) rules.SSHRule {
	c := rules.SSHRule{Users: users, Action: r.action, AcceptEnv: r.acceptEnv, Rule: r.index, Origin: p.origin(r),
		EnforceRecorder: r.enforceRec, RecordInput: r.recordInput}
	if r.action == rules.Check {
		c.CheckPeriod = r.checkPeriod
	}
	return c
}

// SSHAccess decides, from identities alone, a login from node src to node dst
// as user req, exactly as dst's compiled rules would (port 22 must be allowed
// by the network rules too). lookup, if non-nil, finds local accounts on dst (see
// rules.Decide). src needs no addresses unless the policy names addresses. The verdict
// carries the rule's EnforceRecorder and RecordInput but no Recorders: those are nodes of
// a network, resolved by Compile.
func (p *Policy) SSHAccess(src, dst Node, req string, lookup rules.LookupAccount) rules.Verdict {
	return rules.Decide(p.sshCandidates(src, dst), req, lookup)
}

func (p *Policy) sshCandidates(src, dst Node) []rules.SSHRule {
	if !p.netAllows(src, dst, rules.ProtoTCP, 22) {
		return nil
	}
	var cand []rules.SSHRule
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
	User   string       // a local account name, or "*" for any account but root
	Action rules.Action // Accept or Check
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
			if _, ok := rules.MapUser(r.Users, k); ok || (k == "*" && r.Users[k] != "") {
				out = append(out, Login{User: k, Action: r.Action})
			}
		}
	}
	return out
}
