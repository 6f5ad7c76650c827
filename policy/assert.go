package policy

import (
	"fmt"
	"net/netip"
	"strconv"

	"tsconnect/policy/rules"

	"github.com/tailscale/hujson"
)

// This file holds the policy's own assertions: the tests and sshTests sections.
// They run on synthetic nodes: a user's device (untagged, owned by the user),
// a tag's device (carrying only that tag), or a device at a host's or IP's
// address. User and tag devices carry no addresses, so rules that name
// addresses never match them.

type netTest struct {
	field        string
	src          alias
	proto        rules.Proto
	accept, deny []testDst
}

type testDst struct {
	a    alias
	port uint16
	text string
	off  int
}

type sshTest struct {
	field               string
	src                 alias
	dst                 []alias
	accept, check, deny []pstr
}

func (b *builder) netTests(v *hujson.Value) {
	items, ok := b.list(v, "tests")
	if !ok {
		return
	}
	for i, it := range items {
		field := fmt.Sprintf("tests[%d]", i)
		m, ok := b.fields(it, field, []string{"src", "proto", "accept", "deny"}, map[string]string{
			"srcPostureAttrs": "device posture is not supported",
		})
		if !ok && m == nil {
			continue
		}
		t := netTest{field: field, proto: rules.ProtoTCP}
		if s, ok := b.requireString(m, "src", field, it.StartOffset); ok {
			t.src, _ = b.parseAlias(s, field+".src", ctxTestSrc)
		}
		if pm, ok := m["proto"]; ok {
			if ps, ok := b.str(pm.val, field+".proto"); ok {
				p, err := parseProto(ps.s)
				if err != nil {
					b.errf(ps.off, field+".proto", "%v", err)
				}
				t.proto = p
			}
		}
		t.accept = b.testDsts(m, "accept", field)
		t.deny = b.testDsts(m, "deny", field)
		if len(t.accept)+len(t.deny) == 0 {
			b.errf(it.StartOffset, field, "no accept or deny assertions")
		}
		b.p.tests = append(b.p.tests, t)
	}
}

func (b *builder) testDsts(m map[string]member, name, field string) []testDst {
	mem, ok := m[name]
	if !ok {
		return nil
	}
	f := field + "." + name
	list, _ := b.strList(mem.val, f)
	var out []testDst
	for _, s := range list {
		target, portStr, err := splitTargetPorts(s.s)
		if err != nil {
			b.errf(s.off, f, "%v", err)
			continue
		}
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil {
			b.errf(s.off, f, "bad port %q in %q: tests name one port", portStr, s.s)
			continue
		}
		a, ok := b.parseAlias(pstr{target, s.off}, f, ctxTestDst)
		if ok {
			out = append(out, testDst{a: a, port: uint16(port), text: s.s, off: s.off})
		}
	}
	return out
}

func (b *builder) sshTests(v *hujson.Value) {
	items, ok := b.list(v, "sshTests")
	if !ok {
		return
	}
	for i, it := range items {
		field := fmt.Sprintf("sshTests[%d]", i)
		m, ok := b.fields(it, field, []string{"src", "dst", "accept", "check", "deny"}, nil)
		if !ok && m == nil {
			continue
		}
		t := sshTest{field: field}
		if s, ok := b.requireString(m, "src", field, it.StartOffset); ok {
			t.src, _ = b.parseAlias(s, field+".src", ctxSSHTestSrc)
		}
		t.dst = b.aliases(m, "dst", field, ctxSSHTestDst, it.StartOffset)
		for name, list := range map[string]*[]pstr{"accept": &t.accept, "check": &t.check, "deny": &t.deny} {
			if mem, ok := m[name]; ok {
				*list, _ = b.strList(mem.val, field+"."+name)
			}
		}
		if len(t.accept)+len(t.check)+len(t.deny) == 0 {
			b.errf(it.StartOffset, field, "no accept, check or deny assertions")
		}
		b.p.sshTests = append(b.p.sshTests, t)
	}
}

// testNode is the synthetic node a test's source or destination stands for.
func testNode(a alias) Node {
	switch a.kind {
	case akUser:
		return Node{Name: a.text, User: a.name}
	case akTag:
		return Node{Name: a.text, Tags: []string{a.name}}
	}
	return Node{Name: a.text, Addresses: []netip.Prefix{hostPrefix(a.prefix.Addr())}}
}

// runTests checks every assertion; failures are positioned errors.
func (p *Policy) runTests() error {
	r := &reader{file: p.file, src: p.src}
	for _, t := range p.tests {
		src := testNode(t.src)
		for _, want := range []struct {
			name  string
			list  []testDst
			allow bool
		}{{"accept", t.accept, true}, {"deny", t.deny, false}} {
			for _, d := range want.list {
				got := p.netAllows(src, testNode(d.a), t.proto, d.port)
				if got != want.allow {
					r.errf(d.off, t.field+"."+want.name, "%q -> %q: expected %s, got %s",
						t.src.text, d.text, allowWord(want.allow), allowWord(got))
				}
			}
		}
	}
	for _, t := range p.sshTests {
		src := testNode(t.src)
		for _, d := range t.dst {
			dst := testNode(d)
			check := func(list []pstr, name string, ok func(rules.Action) bool) {
				for _, u := range list {
					v := p.SSHAccess(src, dst, u.s, nil)
					if !ok(v.Action) {
						got := string(v.Action)
						if v.Action == rules.Reject {
							got += " (" + v.Reason + ")"
						}
						r.errf(u.off, t.field+"."+name, "%q -> %q as %q: expected %s, got %s",
							t.src.text, d.text, u.s, name, got)
					}
				}
			}
			check(t.accept, "accept", func(a rules.Action) bool { return a == rules.Accept || a == rules.Check })
			check(t.check, "check", func(a rules.Action) bool { return a == rules.Check })
			check(t.deny, "deny", func(a rules.Action) bool { return a == rules.Reject })
		}
	}
	if len(r.errs) > 0 {
		return r.errs
	}
	return nil
}

func allowWord(b bool) string {
	if b {
		return "accept"
	}
	return "deny"
}
