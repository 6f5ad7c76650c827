package policy

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"tsconnect/policy/rules"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
func ip(s string) netip.Addr     { return netip.MustParseAddr(s) }

func TestFilterFollowsACLs(t *testing.T) {
	tests := []struct {
		rule   string
		policy string
		dst    Node
		src    string
		to     string
		proto  rules.Proto
		want   bool
	}{
		{"acl dst port list: 443 open", "https-only", prodServer, "100.64.0.3", "100.64.0.10:443", rules.ProtoTCP, true},
		{"acl dst port list: 22 closed", "https-only", prodServer, "100.64.0.3", "100.64.0.10:22", rules.ProtoTCP, false},
		{"no proto means tcp, udp and icmp", "https-only", prodServer, "100.64.0.3", "100.64.0.10:443", rules.ProtoUDP, true},
		{"no proto: other protocols stay out", "https-only", prodServer, "100.64.0.3", "100.64.0.10:443", rules.ProtoGRE, false},
		{"* source is any address", "https-only", prodServer, "198.51.100.7", "100.64.0.10:443", rules.ProtoTCP, true},
		{"grants ip tcp:22 opens tcp only", "grants", prodServer, "100.64.0.1", "100.64.0.10:22", rules.ProtoTCP, true},
		{"grants ip tcp:22 keeps udp out", "grants", prodServer, "100.64.0.1", "100.64.0.10:22", rules.ProtoUDP, false},
		{"grants src limits sources", "grants", prodServer, "100.64.0.4", "100.64.0.10:22", rules.ProtoTCP, false},
		{"a node gets only rules concerning it", "grants", webServer, "100.64.0.1", "100.64.0.11:22", rules.ProtoTCP, false},
		{"asymmetric: bob reaches 443", "asymmetric", prodServer, "100.64.0.3", "100.64.0.10:443", rules.ProtoTCP, true},
		{"asymmetric: bob does not reach 22", "asymmetric", prodServer, "100.64.0.3", "100.64.0.10:22", rules.ProtoTCP, false},
		{"autogroup:self: own other device", "self-acl", aliceDesktop, "fd7a:115c:a1e0::1", "[fd7a:115c:a1e0::2]:22", rules.ProtoTCP, true},
		{"autogroup:self: other user's device", "self-acl", aliceDesktop, "100.64.0.3", "100.64.0.2:22", rules.ProtoTCP, false},
		{"no acls and no grants: nothing", "no-network", aliceDesktop, "100.64.0.1", "100.64.0.2:22", rules.ProtoTCP, false},
		{"default policy: everything", "default", prodServer, "100.64.0.4", "100.64.0.10:5432", rules.ProtoTCP, true},
		{"default policy: every protocol", "default", prodServer, "100.64.0.4", "100.64.0.10:0", rules.ProtoICMP, true},
		{"hosts alias source", "hosts", webServer, "100.64.0.12", "100.64.0.11:22", rules.ProtoTCP, true},
	}
	for _, c := range tests {
		t.Run(c.rule, func(t *testing.T) {
			f := loadConformance(t, c.policy).Compile(testNetwork, c.dst).Filter
			if got := f.Allows(ip(c.src), ap(c.to), c.proto); got != c.want {
				t.Errorf("%s -> %s proto %d: got %v, want %v\nfilter: %+v", c.src, c.to, c.proto, got, c.want, f)
			}
		})
	}
}

func TestCompiledSSHRulesOrderAndScope(t *testing.T) {
	p := loadConformance(t, "main")
	compiled := p.Compile(testNetwork, prodServer).SSH
	// ssh[1] (check) comes first although it is second in the file; only
	// ssh[0] and ssh[1] concern prod.
	var got []int
	for _, r := range compiled {
		got = append(got, r.Rule)
	}
	if !reflect.DeepEqual(got, []int{1, 0}) {
		t.Fatalf("rules for prod: %v, want [1 0]", got)
	}
	check := compiled[0]
	if check.Action != rules.Check || check.CheckPeriod != time.Hour ||
		!reflect.DeepEqual(check.Users, map[string]string{"root": "root"}) ||
		!reflect.DeepEqual(check.Principals, []netip.Addr{ip("100.64.0.1"), ip("fd7a:115c:a1e0::1"), ip("100.64.0.2"), ip("fd7a:115c:a1e0::2")}) {
		t.Errorf("check rule: %+v", check)
	}
	if check.Origin != "ssh[1] (main.hujson:12:3)" {
		t.Errorf("origin %q", check.Origin)
	}
	// The compiled form is what control sends; it survives JSON.
	b, err := json.Marshal(compiled)
	if err != nil {
		t.Fatal(err)
	}
	var back []rules.SSHRule
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, compiled) {
		t.Errorf("JSON round trip: %v\n%s", err, b)
	}
}

func TestLocalpartCompilesPerUser(t *testing.T) {
	rules := loadConformance(t, "main").Compile(testNetwork, webServer).SSH
	var maps []map[string]string
	for _, r := range rules {
		if r.Rule == 4 {
			maps = append(maps, r.Users)
		}
	}
	// alice and bob each get their own local part; carol (other domain) and
	// root@example.com (never root) get nothing.
	want := []map[string]string{{"alice": "alice"}, {"bob": "bob"}}
	if !reflect.DeepEqual(maps, want) {
		t.Errorf("localpart rules: %v, want %v", maps, want)
	}
}

func TestSSHLogins(t *testing.T) {
	p := loadConformance(t, "main")
	got := p.SSHLogins(aliceLaptop, prodServer)
	want := []Login{{"root", rules.Check}, {"deploy", rules.Accept}, {"ubuntu", rules.Accept}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("alice on prod: %v, want %v", got, want)
	}
	got = p.SSHLogins(Node{User: "alice@example.com"}, aliceDesktop)
	if want := []Login{{"*", rules.Accept}}; !reflect.DeepEqual(got, want) {
		t.Errorf("alice's browser on her desktop: %v, want %v", got, want)
	}
	if got := p.SSHLogins(carolLaptop, prodServer); got != nil {
		t.Errorf("carol on prod: %v, want none", got)
	}
}

func TestAcceptEnv(t *testing.T) {
	v := loadConformance(t, "main").SSHAccess(ciRunner, webServer, "deploy", nil)
	for name, want := range map[string]bool{"GIT_DIR": true, "GIT_": true, "LANG": true, "LANGUAGE": false, "PATH": false} {
		if got := v.AcceptsEnv(name); got != want {
			t.Errorf("AcceptsEnv(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestCanApplyTag(t *testing.T) {
	p := loadConformance(t, "main")
	for _, c := range []struct {
		user, tag string
		want      bool
	}{
		{"alice@example.com", "tag:prod", true}, // through group:eng
		{"bob@example.com", "tag:web", false},   // web is alice's only
		{"alice@example.com", "tag:web", true},
		{"carol@other.org", "tag:ci", false},
		{"alice@example.com", "tag:nope", false},
	} {
		if got := p.CanApplyTag(c.user, c.tag); got != c.want {
			t.Errorf("CanApplyTag(%s, %s) = %v", c.user, c.tag, got)
		}
	}
}
