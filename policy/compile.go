package policy

import (
	"strings"

	"tsconnect/policy/rules"
)

// Compile builds the rules node dst enforces, given every node of the network. To compile
// for many nodes of one network, use NewCompiler once and its Compile per node.
func (p *Policy) Compile(nw *Network, dst Node) *rules.NodeRules {
	return p.NewCompiler(nw).Compile(dst)
}

// CanApplyTag reports whether user owns tag (directly, through a group, or
// as a member when autogroup:member owns it). Admins may apply any tag; that
// is the caller's decision.
func (p *Policy) CanApplyTag(user, tag string) bool {
	return p.CanApplyTagWithGroups(user, nil, tag)
}

// CanApplyTagWithGroups is CanApplyTag for a user who holds idpGroups at the identity
// provider (see Node.UserGroups).
func (p *Policy) CanApplyTagWithGroups(user string, idpGroups []string, tag string) bool {
	owners, ok := p.tagOwners[tag]
	if !ok || user == "" {
		return false
	}
	for _, o := range owners {
		switch {
		case o == "autogroup:member":
			return true
		case strings.HasPrefix(o, "group:"):
			if p.inGroup(o, user, idpGroups) {
				return true
			}
		case strings.EqualFold(o, user):
			return true
		}
	}
	return false
}

// Source returns the policy file's text as parsed.
func (p *Policy) Source() []byte { return p.src }
