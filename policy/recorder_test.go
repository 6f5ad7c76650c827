package policy

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"tsconnect/policy/rules"
)

const recorderPolicy = `{
	"tagOwners": {"tag:rec": [], "tag:prod": []},
	"hosts": {"rec-b": "100.64.0.12"},
	"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
	"ssh": [
		{"action": "accept", "src": ["autogroup:member"], "dst": ["tag:prod"], "users": ["root"],
		 "recorder": ["tag:rec", "rec-b"], "enforceRecorder": true, "recordInput": true},
		{"action": "accept", "src": ["autogroup:member"], "dst": ["tag:prod"], "users": ["deploy"],
		 "recorder": ["rec-b"]},
		{"action": "accept", "src": ["autogroup:member"], "dst": ["tag:prod"], "users": ["ops"]},
	],
	"sshTests": [{"src": "ada@example.com", "dst": ["tag:prod"], "accept": ["root", "deploy", "ops"]}],
}`

func recNode(id int64, user string, tags ...string) Node {
	return Node{ID: id, Name: "n", User: user, Tags: tags, Addresses: []netip.Prefix{
		netip.PrefixFrom(netip.AddrFrom4([4]byte{100, 64, 0, byte(id)}), 32),
		netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 0x7a, 15: byte(id)}), 128)}}
}

// TestRecorderCompiles: a rule's recorders reach the destination's compiled rules and the
// login's verdict as the recorder nodes' addresses at the recorder port (tags' members by
// node ID, then hosts), with enforceRecorder and recordInput; a rule without recorder
// carries none, and sshTests decide as before.
func TestRecorderCompiles(t *testing.T) {
	p, err := Parse("rec.hujson", []byte(recorderPolicy))
	if err != nil {
		t.Fatal(err)
	}
	laptop, prod := recNode(1, "ada@example.com"), recNode(2, "", "tag:prod")
	recA, recB, recC := recNode(11, "", "tag:rec"), recNode(12, ""), recNode(13, "", "tag:rec")
	nw := &Network{Nodes: []Node{laptop, prod, recA, recB, recC}}
	nr := p.Compile(nw, prod)
	ap := func(s string) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr(s), rules.RecorderPort) }
	all := []netip.AddrPort{ap("100.64.0.11"), ap("100.64.0.12"), ap("100.64.0.13")}
	v := nr.SSHVerdict(laptop.Addresses[0].Addr(), "root", nil)
	if v.Action != rules.Accept || !reflect.DeepEqual(v.Recorders, all) || !v.EnforceRecorder || !v.RecordInput {
		t.Errorf("root: %+v, want accept recorded to %v, enforced, with input", v, all)
	}
	v = nr.SSHVerdict(laptop.Addresses[1].Addr(), "deploy", nil)
	if v.Action != rules.Accept || !reflect.DeepEqual(v.Recorders, []netip.AddrPort{ap("100.64.0.12")}) || v.EnforceRecorder || v.RecordInput {
		t.Errorf("deploy: %+v, want accept recorded to rec-b only, not enforced, no input", v)
	}
	if v = nr.SSHVerdict(laptop.Addresses[0].Addr(), "ops", nil); v.Action != rules.Accept || v.Recorders != nil || v.EnforceRecorder {
		t.Errorf("ops: %+v, want accept without recorder", v)
	}
	// An IPv6-only destination dials the recorders' IPv6 addresses.
	prod6 := prod
	prod6.Addresses = prod.Addresses[1:]
	got := p.Compile(nw, prod6).SSH[0].Recorders
	if want := []netip.AddrPort{ap("fd7a::b"), ap("fd7a::c"), ap("fd7a::d")}; !reflect.DeepEqual(got, want) {
		t.Errorf("IPv6-only destination: recorders %v, want %v", got, want)
	}
	// The wire form (control → agent) keeps the fields.
	b, err := json.Marshal(nr.SSH)
	if err != nil {
		t.Fatal(err)
	}
	var back []rules.SSHRule
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, nr.SSH) {
		t.Errorf("JSON round trip: %v\n%s", err, b)
	}
	// No recorder node in the network: the rule still applies, with no recorder to dial
	// (an agent enforcing it refuses the login).
	v = p.Compile(&Network{Nodes: []Node{laptop, prod}}, prod).SSHVerdict(laptop.Addresses[0].Addr(), "root", nil)
	if v.Action != rules.Accept || len(v.Recorders) != 0 || !v.EnforceRecorder {
		t.Errorf("no recorder node: %+v", v)
	}
}

// TestRecorderMembershipUpdates: a node joining, leaving or being retagged as a recorder
// changes the rules of the destinations whose rules name it, and Update names them and
// compiles what a fresh compiler does.
func TestRecorderMembershipUpdates(t *testing.T) {
	p, err := Parse("rec.hujson", []byte(recorderPolicy))
	if err != nil {
		t.Fatal(err)
	}
	laptop, prod, other := recNode(1, "ada@example.com"), recNode(2, "", "tag:prod"), recNode(3, "bob@example.com")
	nodes := []Node{laptop, prod, other}
	c := p.NewCompiler(&Network{Nodes: nodes})
	rec := recNode(11, "", "tag:rec")
	steps := []struct {
		name      string
		gone, now []Node
	}{
		{"recorder joins", nil, []Node{rec}},
		{"recorder loses its tag", []Node{rec}, []Node{recNode(11, "", "tag:other")}},
		{"tag comes back", []Node{recNode(11, "", "tag:other")}, []Node{rec}},
		{"recorder leaves", []Node{rec}, nil},
	}
	for _, s := range steps {
		before, _ := json.Marshal(c.Compile(prod))
		affected := c.Update(s.gone, s.now)
		nodes = nodes[:3]
		nodes = append(nodes, s.now...)
		got, _ := json.Marshal(c.Compile(prod))
		want, _ := json.Marshal(p.NewCompiler(&Network{Nodes: nodes}).Compile(prod))
		if string(got) != string(want) {
			t.Fatalf("%s: after Update\n%s\nwant\n%s", s.name, got, want)
		}
		if string(got) == string(before) {
			t.Fatalf("%s: prod's rules did not change", s.name)
		}
		named := false
		for _, id := range affected {
			named = named || id == prod.ID
		}
		if !named {
			t.Errorf("%s: Update named %v, not prod", s.name, affected)
		}
		affects := false
		for _, v := range append(s.gone, s.now...) {
			affects = affects || p.Affects(v, prod)
			if p.Affects(v, other) {
				t.Errorf("%s: Affects(%v, other) is true: no rule of other names a recorder", s.name, v.Tags)
			}
		}
		if !affects {
			t.Errorf("%s: Affects(old or new form, prod) is false", s.name)
		}
	}
}

// TestRecordFrom: a recorder's compiled rules list the addresses of the nodes an ssh rule
// naming it applies to (only those), and an agent joining or leaving such a rule's
// destinations changes the recorder's list: Update names the recorder and compiles what a
// fresh compiler does, and Affects says so.
func TestRecordFrom(t *testing.T) {
	p, err := Parse("rec.hujson", []byte(recorderPolicy))
	if err != nil {
		t.Fatal(err)
	}
	laptop, prod, recA, recB := recNode(1, "ada@example.com"), recNode(2, "", "tag:prod"), recNode(11, "", "tag:rec"), recNode(12, "")
	nodes := []Node{laptop, prod, recA, recB}
	c := p.NewCompiler(&Network{Nodes: nodes})
	addrs := func(ns ...Node) []netip.Addr {
		var out []netip.Addr
		for _, n := range ns {
			for _, a := range n.Addresses {
				out = append(out, a.Addr())
			}
		}
		slices.SortFunc(out, netip.Addr.Compare)
		return out
	}
	if got := c.Compile(recA).RecordFrom; !reflect.DeepEqual(got, addrs(prod)) {
		t.Errorf("tag:rec's recorder takes recordings from %v, want prod's %v", got, addrs(prod))
	}
	if got := c.Compile(laptop).RecordFrom; got != nil {
		t.Errorf("the laptop, no recorder, lists %v", got)
	}
	prod2 := recNode(3, "", "tag:prod")
	for _, s := range []struct {
		name      string
		gone, now []Node
		want      []netip.Addr
	}{
		{"a second prod joins", nil, []Node{prod2}, addrs(prod, prod2)},
		{"it loses its tag", []Node{prod2}, []Node{recNode(3, "")}, addrs(prod)},
	} {
		affected := c.Update(s.gone, s.now)
		nodes = append(nodes[:4], s.now...)
		got := c.Compile(recB).RecordFrom
		fresh := p.NewCompiler(&Network{Nodes: nodes}).Compile(recB).RecordFrom
		if !reflect.DeepEqual(got, s.want) || !reflect.DeepEqual(fresh, s.want) {
			t.Errorf("%s: rec-b takes recordings from %v (fresh compiler %v), want %v", s.name, got, fresh, s.want)
		}
		if !slices.Contains(affected, recA.ID) || !slices.Contains(affected, recB.ID) {
			t.Errorf("%s: Update named %v, not both recorders", s.name, affected)
		}
		if !p.Affects(prod2, recB) {
			t.Errorf("%s: Affects(prod2, rec-b) is false", s.name)
		}
	}
}
