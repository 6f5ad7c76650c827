package policy

import (
	"net/netip"
	"slices"
	"strings"
)

// aliasKind says what a source or destination name in the policy refers to.
type aliasKind uint8

const (
	akAll    aliasKind = 1 << iota // "*"
	akUser                         // alice@example.com
	akGroup                        // group:eng
	akTag                          // tag:prod
	akPrefix                       // 100.64.0.1, 10.0.0.0/8, or a hosts name
	akMember                       // autogroup:member(s)
	akTagged                       // autogroup:tagged
	akSelf                         // autogroup:self
)

// alias is one resolved source or destination name.
type alias struct {
	kind   aliasKind
	text   string // as written
	name   string // user, group or tag name
	prefix netip.Prefix
	host   bool // prefix came from the hosts section
	off    int
}

// aliasCtx is where a name is used: which kinds are allowed there.
type aliasCtx struct {
	allowed aliasKind
	what    string // "source", "destination"
	ssh     bool
}

var (
	ctxNetSrc     = aliasCtx{akAll | akUser | akGroup | akTag | akPrefix | akMember | akTagged, "source", false}
	ctxNetDst     = aliasCtx{akAll | akUser | akGroup | akTag | akPrefix | akMember | akTagged | akSelf, "destination", false}
	ctxSSHSrc     = aliasCtx{akUser | akGroup | akTag | akMember | akTagged, "SSH source", true}
	ctxSSHDst     = aliasCtx{akUser | akTag | akMember | akTagged | akSelf, "SSH destination", true}
	ctxTestSrc    = aliasCtx{akUser | akTag | akPrefix, "test source", false}
	ctxTestDst    = aliasCtx{akUser | akTag | akPrefix, "test destination", false}
	ctxSSHTestSrc = aliasCtx{akUser | akTag, "SSH test source", true}
	ctxSSHTestDst = aliasCtx{akUser | akTag | akPrefix, "SSH test destination", true}
	ctxRecorder   = aliasCtx{akTag | akPrefix, "recorder", true}
	ctxViewer     = aliasCtx{akUser | akGroup | akMember, "recording viewer", false}
)

// knownAutogroups are autogroups of the established format that this
// implementation does not support; using one is refused by name.
var unsupportedAutogroups = map[string]bool{
	"autogroup:internet": true, "autogroup:shared": true, "autogroup:admin": true,
	"autogroup:owner": true, "autogroup:it-admin": true, "autogroup:network-admin": true,
	"autogroup:billing-admin": true, "autogroup:auditor": true, "autogroup:danger-all": true,
}

// parseAlias resolves s in context ctx, recording an error when it is not allowed there.
func (b *builder) parseAlias(s pstr, field string, ctx aliasCtx) (alias, bool) {
	a := alias{text: s.s, off: s.off}
	t := s.s
	switch {
	case t == "":
		b.errf(s.off, field, "empty %s", ctx.what)
		return a, false
	case t == "*":
		a.kind = akAll
	case strings.HasPrefix(t, "autogroup:"):
		switch t {
		case "autogroup:member", "autogroup:members":
			a.kind = akMember
		case "autogroup:tagged":
			a.kind = akTagged
		case "autogroup:self":
			a.kind = akSelf
		case "autogroup:nonroot":
			b.errf(s.off, field, "%q names local users; it belongs in users, not in %s", t, field)
			return a, false
		default:
			if unsupportedAutogroups[t] {
				b.errf(s.off, field, "autogroup %q is not supported", t)
			} else {
				b.errf(s.off, field, "unknown autogroup %q", t)
			}
			return a, false
		}
	case strings.HasPrefix(t, idpGroupPrefix):
		b.errf(s.off, field, "%q can only be a member in groups: map it to a group (\"group:NAME\": [%q]) and use that", t, t)
		return a, false
	case strings.HasPrefix(t, "group:"):
		a.kind, a.name = akGroup, t
		if _, ok := b.p.groups[t]; !ok {
			b.errf(s.off, field, "unknown group %q", t)
			return a, false
		}
	case strings.HasPrefix(t, "tag:"):
		a.kind, a.name = akTag, t
		if !b.checkTagName(s, field) {
			return a, false
		}
		if _, ok := b.p.tagOwners[t]; !ok {
			b.errf(s.off, field, "tag %q has no owner in tagOwners", t)
			return a, false
		}
	case strings.Contains(t, "@"):
		a.kind, a.name = akUser, t
		if strings.HasPrefix(t, "@") || strings.ContainsAny(t, " \t*:") {
			b.errf(s.off, field, "%q is not a valid user", t)
			return a, false
		}
	default:
		if pfx, ok := b.p.hosts[t]; ok {
			a.kind, a.prefix, a.host = akPrefix, pfx, true
		} else if ip, err := netip.ParseAddr(t); err == nil {
			a.kind, a.prefix = akPrefix, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen())
		} else if pfx, err := netip.ParsePrefix(t); err == nil {
			a.kind, a.prefix = akPrefix, pfx.Masked()
		} else {
			b.errf(s.off, field, "unknown %s %q: not a user, group:, tag:, autogroup:, host, IP or CIDR", ctx.what, t)
			return a, false
		}
	}
	if ctx.allowed&a.kind == 0 {
		switch {
		case ctx.ssh && a.host && strings.Contains(ctx.what, "destination") && ctx.allowed&akPrefix == 0:
			b.errf(s.off, field, "hosts alias %q cannot be an SSH destination; use a tag, a user or autogroup:self", t)
		case ctx.ssh && a.kind == akAll && strings.Contains(ctx.what, "destination"):
			b.errf(s.off, field, `"*" cannot be an SSH destination; use autogroup:member, autogroup:tagged, tags or users`)
		default:
			b.errf(s.off, field, "%q cannot be used as %s", t, article(ctx.what))
		}
		return a, false
	}
	return a, true
}

func article(what string) string {
	switch what[0] {
	case 'a', 'e', 'i', 'o', 'u', 'S':
		return "an " + what
	}
	return "a " + what
}

func (b *builder) checkTagName(s pstr, field string) bool {
	name := strings.TrimPrefix(s.s, "tag:")
	ok := name != ""
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			ok = false
		}
	}
	if !ok {
		b.errf(s.off, field, "%q is not a valid tag: want tag: followed by letters, digits, - or _", s.s)
	}
	return ok
}

// matches reports whether node n is named by a (autogroup:self is handled by callers).
func (p *Policy) matches(a alias, n Node) bool {
	switch a.kind {
	case akAll:
		return true
	case akUser:
		return n.owner() != "" && strings.EqualFold(n.owner(), a.name)
	case akGroup:
		return n.owner() != "" && p.inGroup(a.name, n.owner(), n.UserGroups)
	case akTag:
		return n.hasTag(a.name)
	case akMember:
		return n.owner() != ""
	case akTagged:
		return n.Tagged()
	case akPrefix:
		for _, ap := range n.Addresses {
			if a.prefix.Contains(ap.Addr()) {
				return true
			}
		}
	}
	return false
}

// inGroup reports whether user, who holds idpGroups at the identity provider, is a member
// of group: listed by login, or through an idpgroup: entry naming one of idpGroups.
func (p *Policy) inGroup(group, user string, idpGroups []string) bool {
	for _, m := range p.groups[group] {
		if strings.EqualFold(m, user) {
			return true
		}
	}
	for _, g := range p.idpGroups[group] {
		if slices.Contains(idpGroups, g) {
			return true
		}
	}
	return false
}

// anyMatches reports whether any of as names n.
func (p *Policy) anyMatches(as []alias, n Node) bool {
	for _, a := range as {
		if p.matches(a, n) {
			return true
		}
	}
	return false
}
