package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"tsconnect/policy/rules"

	"github.com/tailscale/hujson"
)

// Policy is a parsed, validated policy file. It is immutable and safe for
// concurrent use.
type Policy struct {
	file      string
	src       []byte
	groups    map[string][]string
	idpGroups map[string][]string // group → identity-provider groups whose members it includes
	tagOwners map[string][]string
	hosts     map[string]netip.Prefix
	net       []netRule // acls and grants, in file order
	ssh       []sshRule // in file order
	tests     []netTest
	sshTests  []sshTest
	viewers   []alias // recordingViewers: who besides admins may watch recordings
}

// netRule is one network permission from acls or grants.
type netRule struct {
	field  string // "acls[0]", "grants[2]"
	src    []alias
	dst    []alias
	ports  []rules.PortRange
	protos []rules.Proto // nil means every protocol
}

// sshRule is one entry of the ssh section.
type sshRule struct {
	index       int
	off         int
	action      rules.Action
	src, dst    []alias
	names       []string // local accounts listed by name (not root)
	root        bool     // "root" listed
	nonroot     bool     // autogroup:nonroot listed
	localparts  []string // domains of localpart:*@domain
	checkPeriod time.Duration
	acceptEnv   []string
	recorder    []alias // recorder nodes: tags and hosts
	enforceRec  bool    // enforceRecorder
	recordInput bool
}

// sections of the established format that this implementation refuses by name.
var unsupportedSections = map[string]string{
	"nodeAttrs":           `section "nodeAttrs" is not supported`,
	"postures":            `section "postures" (device posture) is not supported`,
	"autoApprovers":       `section "autoApprovers" (routes and exit nodes) is not supported`,
	"derpMap":             `section "derpMap" is not supported: the relay map is set in control's configuration`,
	"ipsets":              `section "ipsets" is not supported`,
	"disableIPv4":         `setting "disableIPv4" is not supported`,
	"randomizeClientPort": `setting "randomizeClientPort" is not supported`,
	"OneCGNATRoute":       `setting "OneCGNATRoute" is not supported`,
	"attrConfig":          `section "attrConfig" is not supported`,
	"settings":            `section "settings" is not supported`,
}

var sections = []string{"groups", "tagOwners", "hosts", "acls", "grants", "tests", "ssh", "sshTests", "recordingViewers"}

// builder reads the syntax tree into a Policy.
type builder struct {
	reader
	p *Policy
}

// Parse reads, validates and tests a policy file. file names it in errors.
// Every problem found is returned as an ErrorList of *Error (file:line:col:
// field: message); failing tests and sshTests refuse the policy too.
func Parse(file string, src []byte) (*Policy, error) {
	p, err := parse(file, src)
	if err != nil {
		return nil, err
	}
	if err := p.runTests(); err != nil {
		return nil, err
	}
	return p, nil
}

func parse(file string, src []byte) (*Policy, error) {
	b := &builder{reader: reader{file: file, src: src}, p: &Policy{
		file: file, src: src,
		groups: map[string][]string{}, idpGroups: map[string][]string{}, tagOwners: map[string][]string{}, hosts: map[string]netip.Prefix{},
	}}
	root, err := hujson.Parse(src)
	if err != nil {
		e := &Error{File: file, Msg: err.Error()}
		var line, col int
		var rest string
		if n, _ := fmt.Sscanf(err.Error(), "hujson: line %d, column %d: ", &line, &col); n == 2 {
			_, rest, _ = strings.Cut(err.Error(), fmt.Sprintf("column %d: ", col))
			e.Line, e.Column, e.Msg = line, col, "syntax error: "+rest
		}
		return nil, ErrorList{e}
	}
	top, ok := b.fields(&root, "", sections, unsupportedSections)
	if ok || top != nil {
		b.build(top)
	}
	if len(b.errs) > 0 {
		slices.SortStableFunc(b.errs, func(x, y *Error) int {
			if x.Line != y.Line {
				return x.Line - y.Line
			}
			return x.Column - y.Column
		})
		return nil, b.errs
	}
	return b.p, nil
}

func (b *builder) build(top map[string]member) {
	// Names first, so rules can refer to them wherever they appear in the file.
	if m, ok := top["groups"]; ok {
		b.groups(m.val)
	}
	if m, ok := top["hosts"]; ok {
		b.hosts(m.val)
	}
	if m, ok := top["tagOwners"]; ok {
		b.tagOwners(m.val)
	}
	if m, ok := top["acls"]; ok {
		b.acls(m.val)
	}
	if m, ok := top["grants"]; ok {
		b.grants(m.val)
	}
	if m, ok := top["ssh"]; ok {
		b.sshRules(m.val)
	}
	if m, ok := top["recordingViewers"]; ok {
		b.recordingViewers(m.val)
	}
	if m, ok := top["tests"]; ok {
		b.netTests(m.val)
	}
	if m, ok := top["sshTests"]; ok {
		b.sshTests(m.val)
	}
}

// idpGroupPrefix marks a group member that is a group at the identity provider:
// "group:eng": ["alice@example.com", "idpgroup:engineering"] makes every user whose
// groups claim holds "engineering" a member of group:eng. It is this implementation's
// extension of the groups section; without it, IdP groups confer nothing.
const idpGroupPrefix = "idpgroup:"

func (b *builder) groups(v *hujson.Value) {
	ms, ok := b.object(v, "groups")
	if !ok {
		return
	}
	for _, m := range ms {
		field := "groups." + m.key
		if !strings.HasPrefix(m.key, "group:") || len(m.key) == len("group:") {
			b.errf(m.keyOff, field, "group names must start with \"group:\"")
			continue
		}
		members, _ := b.strList(m.val, field)
		b.p.groups[m.key] = []string{}
		for _, u := range members {
			switch {
			case strings.HasPrefix(u.s, "group:"):
				b.errf(u.off, field, "nested groups are not allowed: %q", u.s)
			case strings.HasPrefix(u.s, "tag:"):
				b.errf(u.off, field, "tags cannot be group members: %q", u.s)
			case strings.HasPrefix(u.s, idpGroupPrefix):
				if name := strings.TrimPrefix(u.s, idpGroupPrefix); name == "" || strings.TrimSpace(name) != name {
					b.errf(u.off, field, "%q is not an identity-provider group: want %sNAME, NAME as the provider sends it", u.s, idpGroupPrefix)
				} else {
					b.p.idpGroups[m.key] = append(b.p.idpGroups[m.key], name)
				}
			case strings.HasPrefix(u.s, "autogroup:"):
				b.errf(u.off, field, "autogroups cannot be group members: %q", u.s)
			case !strings.Contains(u.s, "@") || strings.HasPrefix(u.s, "@"):
				b.errf(u.off, field, "%q is not a user (want a login such as alice@example.com)", u.s)
			default:
				b.p.groups[m.key] = append(b.p.groups[m.key], u.s)
			}
		}
	}
}

func (b *builder) hosts(v *hujson.Value) {
	ms, ok := b.object(v, "hosts")
	if !ok {
		return
	}
	for _, m := range ms {
		field := "hosts." + m.key
		if m.key == "" || strings.ContainsAny(m.key, ":@*/ ") {
			b.errf(m.keyOff, field, "%q is not a valid host name", m.key)
			continue
		}
		s, ok := b.str(m.val, field)
		if !ok {
			continue
		}
		if ip, err := netip.ParseAddr(s.s); err == nil {
			b.p.hosts[m.key] = netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen())
		} else if pfx, err := netip.ParsePrefix(s.s); err == nil {
			b.p.hosts[m.key] = pfx.Masked()
		} else {
			b.errf(s.off, field, "%q is not an IP address or CIDR prefix", s.s)
		}
	}
}

func (b *builder) tagOwners(v *hujson.Value) {
	ms, ok := b.object(v, "tagOwners")
	if !ok {
		return
	}
	for _, m := range ms {
		if strings.HasPrefix(m.key, "tag:") && b.checkTagName(pstr{m.key, m.keyOff}, "tagOwners") {
			b.p.tagOwners[m.key] = nil
		} else if !strings.HasPrefix(m.key, "tag:") {
			b.errf(m.keyOff, "tagOwners", "%q is not a tag: tag names start with \"tag:\"", m.key)
		}
	}
	for _, m := range ms {
		if _, ok := b.p.tagOwners[m.key]; !ok {
			continue
		}
		field := "tagOwners." + m.key
		owners, _ := b.strList(m.val, field)
		list := []string{}
		for _, o := range owners {
			switch {
			case strings.HasPrefix(o.s, "group:"):
				if _, ok := b.p.groups[o.s]; !ok {
					b.errf(o.off, field, "unknown group %q", o.s)
					continue
				}
			case strings.HasPrefix(o.s, "tag:"):
				if _, ok := b.p.tagOwners[o.s]; !ok {
					b.errf(o.off, field, "tag %q has no owner in tagOwners", o.s)
					continue
				}
			case o.s == "autogroup:member":
			case strings.HasPrefix(o.s, "autogroup:"):
				b.errf(o.off, field, "autogroup %q cannot own tags here (use users, groups, tags or autogroup:member)", o.s)
				continue
			case !strings.Contains(o.s, "@") || strings.HasPrefix(o.s, "@"):
				b.errf(o.off, field, "%q is not a user, group or tag", o.s)
				continue
			}
			list = append(list, o.s)
		}
		b.p.tagOwners[m.key] = list
	}
}

// aliases reads a required, non-empty list of names.
func (b *builder) aliases(m map[string]member, name, field string, ctx aliasCtx, objOff int) []alias {
	mem, ok := m[name]
	if !ok {
		b.errf(objOff, field, "missing %q", name)
		return nil
	}
	f := field + "." + name
	list, _ := b.strList(mem.val, f)
	if len(list) == 0 && mem.val.Value.Kind() == '[' {
		b.errf(mem.val.StartOffset, f, "is empty")
	}
	var out []alias
	for _, s := range list {
		if a, ok := b.parseAlias(s, f, ctx); ok {
			out = append(out, a)
		}
	}
	return out
}

// requireString reads a required string field.
func (b *builder) requireString(m map[string]member, name, field string, objOff int) (pstr, bool) {
	mem, ok := m[name]
	if !ok {
		b.errf(objOff, field, "missing %q", name)
		return pstr{}, false
	}
	return b.str(mem.val, field+"."+name)
}

func (b *builder) acls(v *hujson.Value) {
	items, ok := b.list(v, "acls")
	if !ok {
		return
	}
	for i, it := range items {
		field := fmt.Sprintf("acls[%d]", i)
		m, ok := b.fields(it, field, []string{"action", "src", "dst", "proto"}, map[string]string{
			"users":      `legacy field "users": use "src"`,
			"ports":      `legacy field "ports": use "dst"`,
			"srcPosture": "device posture is not supported",
		})
		if !ok && m == nil {
			continue
		}
		if act, ok := b.requireString(m, "action", field, it.StartOffset); ok && act.s != "accept" {
			b.errf(act.off, field+".action", "unknown action %q: acls allow only \"accept\"", act.s)
		}
		src := b.aliases(m, "src", field, ctxNetSrc, it.StartOffset)
		protos := defaultProtos
		if pm, ok := m["proto"]; ok {
			if ps, ok := b.str(pm.val, field+".proto"); ok {
				p, err := parseProto(ps.s)
				if err != nil {
					b.errf(ps.off, field+".proto", "%v", err)
				}
				protos = []rules.Proto{p}
			}
		}
		dm, ok := m["dst"]
		if !ok {
			b.errf(it.StartOffset, field, "missing \"dst\"")
			continue
		}
		dsts, _ := b.strList(dm.val, field+".dst")
		if len(dsts) == 0 && dm.val.Value.Kind() == '[' {
			b.errf(dm.val.StartOffset, field+".dst", "is empty")
		}
		var selfDst bool
		for _, d := range dsts {
			target, portStr, err := splitTargetPorts(d.s)
			if err != nil {
				b.errf(d.off, field+".dst", "%v", err)
				continue
			}
			ports, err := parsePorts(portStr)
			if err != nil {
				b.errf(d.off, field+".dst", "%q: %v", d.s, err)
				continue
			}
			if len(protos) == 1 && !protos[0].HasPorts() && portStr != "*" {
				b.errf(d.off, field+".dst", "protocol %d has no ports: use %s:*", protos[0], target)
				continue
			}
			a, ok := b.parseAlias(pstr{target, d.off}, field+".dst", ctxNetDst)
			if !ok {
				continue
			}
			selfDst = selfDst || a.kind == akSelf
			b.p.net = append(b.p.net, netRule{field: field, src: src, dst: []alias{a}, ports: ports, protos: protos})
		}
		if selfDst {
			b.checkSelfSources(src, field+".src")
		}
	}
}

// checkSelfSources refuses sources that cannot be narrowed to one user's devices.
func (b *builder) checkSelfSources(src []alias, field string) {
	for _, s := range src {
		if s.kind&(akUser|akGroup|akMember|akAll) == 0 {
			b.errf(s.off, field, "%q cannot reach autogroup:self: sources for autogroup:self must be users, groups, autogroup:member or *", s.text)
		}
	}
}

func (b *builder) grants(v *hujson.Value) {
	items, ok := b.list(v, "grants")
	if !ok {
		return
	}
	for i, it := range items {
		field := fmt.Sprintf("grants[%d]", i)
		m, ok := b.fields(it, field, []string{"src", "dst", "ip"}, map[string]string{
			"app":        "application grants (app) are not supported: only network grants (ip)",
			"via":        "routing grants (via) are not supported",
			"srcPosture": "device posture is not supported",
		})
		if !ok && m == nil {
			continue
		}
		src := b.aliases(m, "src", field, ctxNetSrc, it.StartOffset)
		dst := b.aliases(m, "dst", field, ctxNetDst, it.StartOffset)
		for _, d := range dst {
			if d.kind == akSelf {
				b.checkSelfSources(src, field+".src")
				break
			}
		}
		im, hasIP := m["ip"]
		if !hasIP {
			if ok { // an app or via grant has been refused already
				b.errf(it.StartOffset, field, "missing \"ip\"")
			}
			continue
		}
		ips, _ := b.strList(im.val, field+".ip")
		if len(ips) == 0 && im.val.Value.Kind() == '[' {
			b.errf(im.val.StartOffset, field+".ip", "is empty")
		}
		for _, ip := range ips {
			r := netRule{field: field, src: src, dst: dst}
			protoStr, portStr, hasProto := strings.Cut(ip.s, ":")
			switch {
			case ip.s == "*":
				r.ports = []rules.PortRange{rules.AllPorts} // every protocol
			case hasProto:
				p, err := parseProto(protoStr)
				if err != nil {
					b.errf(ip.off, field+".ip", "%v", err)
					continue
				}
				if !p.HasPorts() && portStr != "*" {
					b.errf(ip.off, field+".ip", "protocol %q has no ports: use %s:*", protoStr, protoStr)
					continue
				}
				r.protos = []rules.Proto{p}
				protoStr = portStr
				fallthrough
			default:
				if !hasProto {
					r.protos = defaultProtos
					protoStr = ip.s
				}
				ports, err := parsePorts(protoStr)
				if err != nil {
					b.errf(ip.off, field+".ip", "%q: %v", ip.s, err)
					continue
				}
				r.ports = ports
			}
			b.p.net = append(b.p.net, r)
		}
	}
}
