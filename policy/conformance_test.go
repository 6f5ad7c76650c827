package policy

import (
	"net/netip"
	"slices"
	"testing"

	"tsconnect/policy/rules"
)

// The network every conformance case runs on.
var (
	aliceLaptop  = node(1, "alice-laptop", "alice@example.com", nil, "100.64.0.1", "fd7a:115c:a1e0::1")
	aliceDesktop = node(2, "alice-desktop", "alice@example.com", nil, "100.64.0.2", "fd7a:115c:a1e0::2")
	bobLaptop    = node(3, "bob-laptop", "bob@example.com", nil, "100.64.0.3", "fd7a:115c:a1e0::3")
	// carol's identity provider puts her in its "engineering" group; that counts only where a
	// policy maps it (idpgroup:engineering).
	carolLaptop = withIdPGroups(node(4, "carol-laptop", "carol@other.org", nil, "100.64.0.4", "fd7a:115c:a1e0::4"), "engineering")
	rootLaptop  = node(5, "root-laptop", "root@example.com", nil, "100.64.0.5", "fd7a:115c:a1e0::5")
	prodServer  = node(10, "prod", "", []string{"tag:prod"}, "100.64.0.10", "fd7a:115c:a1e0::a")
	webServer   = node(11, "web", "", []string{"tag:web"}, "100.64.0.11", "fd7a:115c:a1e0::b")
	ciRunner    = node(12, "ci", "", []string{"tag:ci"}, "100.64.0.12", "fd7a:115c:a1e0::c")
	ciRunner2   = node(13, "ci2", "", []string{"tag:ci"}, "100.64.0.13", "fd7a:115c:a1e0::d")
	// A device of alice's that was tagged: it is no longer alice's.
	aliceTagged = node(14, "alice-tagged", "", []string{"tag:web"}, "100.64.0.14", "fd7a:115c:a1e0::e")

	testNetwork = &Network{
		Nodes: []Node{aliceLaptop, aliceDesktop, bobLaptop, carolLaptop, rootLaptop, prodServer, webServer, ciRunner, ciRunner2, aliceTagged},
		Users: []User{{"alice@example.com"}, {"bob@example.com"}, {"carol@other.org"}, {"root@example.com"}},
	}
)

func node(id int64, name, user string, tags []string, addrs ...string) Node {
	n := Node{ID: id, Name: name, User: user, Tags: tags}
	for _, a := range addrs {
		ip := netip.MustParseAddr(a)
		n.Addresses = append(n.Addresses, netip.PrefixFrom(ip, ip.BitLen()))
	}
	return n
}

func withIdPGroups(n Node, groups ...string) Node {
	n.UserGroups = groups
	return n
}

// localAccounts exist on every test machine; carol and ghost do not.
// localAccounts are the test node's accounts: root is uid 0, the others are not.
func localAccounts(name string) (rules.Account, bool) {
	i := slices.Index([]string{"root", "alice", "bob", "ubuntu", "deploy"}, name)
	return rules.Account{Name: name, UID: uint32(i) * 1000}, i >= 0
}

var conformancePolicies = map[string]string{
	"main": `{
	// Engineers, their tags and what they may do.
	"groups": {"group:eng": ["alice@example.com", "bob@example.com"]},
	"tagOwners": {
		"tag:prod": ["group:eng"],
		"tag:web":  ["alice@example.com"],
		"tag:ci":   ["group:eng"],
	},
	"acls": [{"action": "accept", "src": ["*"], "dst": ["*:22"]}],
	"ssh": [
		{"action": "accept", "src": ["group:eng"], "dst": ["tag:prod"], "users": ["ubuntu", "deploy"]},
		{"action": "check", "src": ["alice@example.com"], "dst": ["tag:prod"], "users": ["root"], "checkPeriod": "1h"},
		{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["autogroup:nonroot"]},
		{"action": "accept", "src": ["tag:ci"], "dst": ["tag:web"], "users": ["deploy"], "acceptEnv": ["GIT_*", "LANG"]},
		{"action": "accept", "src": ["autogroup:members"], "dst": ["tag:web"], "users": ["localpart:*@example.com"]},
		{"action": "accept", "src": ["bob@example.com"], "dst": ["bob@example.com"], "users": ["root"]},
	],
}`,
	"no-network": `{
	"ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["autogroup:nonroot"]}],
}`,
	"https-only": `{
	"groups": {"group:eng": ["alice@example.com"]},
	"tagOwners": {"tag:prod": []},
	"acls": [{"action": "accept", "src": ["*"], "dst": ["tag:prod:443"]}],
	"ssh": [{"action": "accept", "src": ["group:eng"], "dst": ["tag:prod"], "users": ["ubuntu"]}],
}`,
	"grants": `{
	"groups": {"group:eng": ["alice@example.com", "bob@example.com"]},
	"tagOwners": {"tag:prod": ["group:eng"]},
	"grants": [{"src": ["group:eng"], "dst": ["tag:prod"], "ip": ["tcp:22"]}],
	"ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["tag:prod"], "users": ["root", "autogroup:nonroot"]}],
}`,
	"asymmetric": `{
	"tagOwners": {"tag:prod": []},
	"acls": [
		{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:prod:22"]},
		{"action": "accept", "src": ["bob@example.com"], "dst": ["tag:prod:80,443"]},
	],
	"ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["tag:prod"], "users": ["autogroup:nonroot"]}],
}`,
	"tagged-dst": `{
	"tagOwners": {"tag:web": []},
	"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
	"ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:tagged"], "users": ["ubuntu"]}],
}`,
	"member-dst": `{
	"groups": {"group:admins": ["carol@other.org"]},
	"tagOwners": {},
	"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
	"ssh": [{"action": "accept", "src": ["group:admins"], "dst": ["autogroup:member"], "users": ["root"]}],
}`,
	"check-first": `{
	"tagOwners": {"tag:prod": []},
	"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
	"ssh": [
		{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:prod"], "users": ["deploy"]},
		{"action": "check", "src": ["alice@example.com"], "dst": ["tag:prod"], "users": ["autogroup:nonroot"]},
	],
}`,
	"self-acl": `{
	"acls": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:22"]}],
	"ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["autogroup:nonroot", "root"]}],
}`,
	"check-always": `{
	"tagOwners": {"tag:web": []},
	"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
	"ssh": [{"action": "check", "src": ["autogroup:member"], "dst": ["tag:web"], "users": ["localpart:*@example.com"], "checkPeriod": "always"}],
}`,
	"hosts": `{
	"hosts": {"ci-box": "100.64.0.12"},
	"tagOwners": {"tag:ci": [], "tag:web": []},
	"acls": [{"action": "accept", "src": ["ci-box"], "dst": ["tag:web:22"]}],
	"ssh": [{"action": "accept", "src": ["tag:ci"], "dst": ["tag:web"], "users": ["deploy"]}],
}`,
	"idp-groups": `{
	"groups": {
		"group:eng":         ["bob@example.com", "idpgroup:engineering"],
		"group:engineering": ["alice@example.com"], // same name as the IdP group, but not mapped
	},
	"tagOwners": {"tag:prod": ["group:eng"], "tag:web": []},
	"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
	"ssh": [
		{"action": "accept", "src": ["group:eng"], "dst": ["tag:prod"], "users": ["ubuntu"]},
		{"action": "accept", "src": ["group:engineering"], "dst": ["tag:web"], "users": ["deploy"]},
	],
}`,
	"named-and-star": `{
	"tagOwners": {"tag:prod": []},
	"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
	"ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["tag:prod"], "users": ["autogroup:nonroot", "deploy"]}],
}`,
}

type conformanceCase struct {
	rule   string // the documented rule the case checks
	policy string // key of conformancePolicies, or "default"
	src    Node
	viaV6  bool // connect from the source's IPv6 address
	dst    Node
	user   string
	want   rules.Action
	local  string // local user on accept/check
	reason string
	ruleIx int // deciding ssh rule index; -1 for none
}

var conformanceCases = []conformanceCase{
	// ssh: src groups, dst tags, users by name.
	{"a group member may log in to a tagged node as a listed user", "main", aliceLaptop, false, prodServer, "ubuntu", rules.Accept, "ubuntu", `permitted to log in as "ubuntu"`, 0},
	{"every member of a group is a source", "main", bobLaptop, false, prodServer, "deploy", rules.Accept, "deploy", `permitted to log in as "deploy"`, 0},
	{"a user outside src is not permitted to the node", "main", carolLaptop, false, prodServer, "ubuntu", rules.Reject, "", "not permitted to this node", -1},
	{"check rules come before accept rules; checkPeriod is carried", "main", aliceLaptop, false, prodServer, "root", rules.Check, "root", `re-authentication required to log in as "root" (valid for 1h)`, 1},
	{"root is denied unless listed", "main", bobLaptop, false, prodServer, "root", rules.Reject, "", `policy does not permit SSH as user "root"`, -1},
	{"users not listed are refused by name", "main", aliceLaptop, false, prodServer, "alice", rules.Reject, "", `policy does not permit SSH as user "alice"`, -1},
	{"autogroup:self: a user reaches their own devices; nonroot maps = to the requested name", "main", aliceLaptop, false, aliceDesktop, "alice", rules.Accept, "alice", `permitted to log in as "alice"`, 2},
	{"autogroup:nonroot never maps to root", "main", aliceLaptop, false, aliceDesktop, "root", rules.Reject, "", `policy does not permit SSH as user "root"`, -1},
	{"autogroup:self: other users' devices are not permitted", "main", bobLaptop, false, aliceDesktop, "bob", rules.Reject, "", "not permitted to this node", -1},
	{"= never maps to a missing account", "main", aliceLaptop, false, aliceDesktop, "ghost", rules.Reject, "", `local user "ghost" not found`, 2},
	{"a tag may be an accept rule's source towards tags", "main", ciRunner, false, webServer, "deploy", rules.Accept, "deploy", `permitted to log in as "deploy"`, 3},
	{"a tag reaches only the destinations its rules name", "main", ciRunner, false, prodServer, "deploy", rules.Reject, "", "not permitted to this node", -1},
	{"tags never reach a user's devices", "main", ciRunner, false, aliceLaptop, "deploy", rules.Reject, "", "not permitted to this node", -1},
	{"localpart:*@domain maps the user's email local part", "main", aliceLaptop, false, webServer, "alice", rules.Accept, "alice", `permitted to log in as "alice"`, 4},
	{"localpart maps only the user's own local part", "main", aliceLaptop, false, webServer, "bob", rules.Reject, "", `policy does not permit SSH as user "bob"`, -1},
	{"localpart: other domains get no user", "main", carolLaptop, false, webServer, "carol", rules.Reject, "", "not permitted to this node", -1},
	{"localpart never maps to root", "main", rootLaptop, false, webServer, "root", rules.Reject, "", "not permitted to this node", -1},
	{"a user destination is reachable from that same user; exact root entry", "main", bobLaptop, false, bobLaptop, "root", rules.Accept, "root", `permitted to log in as "root"`, 5},
	{"first match wins: self rule before user rule", "main", bobLaptop, false, bobLaptop, "bob", rules.Accept, "bob", `permitted to log in as "bob"`, 2},
	{"sources are matched by IPv6 address too", "main", aliceLaptop, true, aliceDesktop, "alice", rules.Accept, "alice", `permitted to log in as "alice"`, 2},
	{"a tagged node without rules is not a source", "main", prodServer, false, webServer, "deploy", rules.Reject, "", "not permitted to this node", -1},
	{"an empty requested user is refused", "main", aliceLaptop, false, prodServer, "", rules.Reject, "", `invalid SSH user name: the user name is empty`, -1},
	{"a NUL in the requested user is refused before any rule", "main", aliceLaptop, false, aliceDesktop, "root\x00x", rules.Reject, "", `invalid SSH user name: the user name contains a NUL byte at byte 4`, -1},
	{"a tagged device no longer belongs to its user", "main", aliceLaptop, false, aliceTagged, "alice", rules.Accept, "alice", `permitted to log in as "alice"`, 4},
	{"a tagged device is not reached through autogroup:self", "main", aliceLaptop, false, aliceTagged, "ubuntu", rules.Reject, "", `policy does not permit SSH as user "ubuntu"`, -1},

	{"a policy without acls and grants allows no traffic, so no SSH", "no-network", aliceLaptop, false, aliceDesktop, "alice", rules.Reject, "", "not permitted to this node", -1},
	{"SSH requires port 22 in the network rules", "https-only", aliceLaptop, false, prodServer, "ubuntu", rules.Reject, "", "not permitted to this node", -1},
	{"network grants (ip tcp:22) open SSH; root listed", "grants", aliceLaptop, false, prodServer, "root", rules.Accept, "root", `permitted to log in as "root"`, 0},
	{"listed root and autogroup:nonroot together", "grants", bobLaptop, false, prodServer, "ubuntu", rules.Accept, "ubuntu", `permitted to log in as "ubuntu"`, 0},
	{"grants: sources outside src cannot reach port 22", "grants", carolLaptop, false, prodServer, "ubuntu", rules.Reject, "", "not permitted to this node", -1},
	{"asymmetric acls: port 22 closed for this source", "asymmetric", bobLaptop, false, prodServer, "bob", rules.Reject, "", "not permitted to this node", -1},
	{"asymmetric acls: port 22 open for this source", "asymmetric", aliceLaptop, false, prodServer, "alice", rules.Accept, "alice", `permitted to log in as "alice"`, 0},

	{"default policy: own device as root, in check mode, 12h", "default", aliceLaptop, false, aliceDesktop, "root", rules.Check, "root", `re-authentication required to log in as "root" (valid for 12h)`, 0},
	{"default policy: own device as non-root, in check mode", "default", aliceLaptop, false, aliceDesktop, "alice", rules.Check, "alice", `re-authentication required to log in as "alice" (valid for 12h)`, 0},
	{"default policy: other users' devices are not permitted", "default", bobLaptop, false, aliceDesktop, "bob", rules.Reject, "", "not permitted to this node", -1},
	{"default policy: tagged devices are nobody's own", "default", aliceLaptop, false, prodServer, "root", rules.Reject, "", "not permitted to this node", -1},
	{"default policy: missing account", "default", carolLaptop, false, carolLaptop, "carol", rules.Reject, "", `local user "carol" not found`, 0},

	{"autogroup:tagged as destination reaches tagged nodes", "tagged-dst", bobLaptop, false, webServer, "ubuntu", rules.Accept, "ubuntu", `permitted to log in as "ubuntu"`, 0},
	{"autogroup:tagged excludes user devices", "tagged-dst", bobLaptop, false, aliceLaptop, "ubuntu", rules.Reject, "", "not permitted to this node", -1},
	{"autogroup:member as destination reaches user devices", "member-dst", carolLaptop, false, aliceLaptop, "root", rules.Accept, "root", `permitted to log in as "root"`, 0},
	{"autogroup:member excludes tagged devices", "member-dst", carolLaptop, false, prodServer, "root", rules.Reject, "", "not permitted to this node", -1},
	{"check rules come before accept rules listed earlier", "check-first", aliceLaptop, false, prodServer, "deploy", rules.Check, "deploy", `re-authentication required to log in as "deploy" (valid for 12h)`, 1},
	{"autogroup:nonroot is not root even in a check rule", "check-first", aliceLaptop, false, prodServer, "root", rules.Reject, "", `policy does not permit SSH as user "root"`, -1},
	{"acls with autogroup:self open port 22 to the same user", "self-acl", aliceLaptop, false, aliceDesktop, "root", rules.Accept, "root", `permitted to log in as "root"`, 0},
	{"acls with autogroup:self keep other users out", "self-acl", bobLaptop, false, aliceDesktop, "bob", rules.Reject, "", "not permitted to this node", -1},
	{"checkPeriod always: re-authenticate on every login", "check-always", aliceLaptop, false, webServer, "alice", rules.Check, "alice", `re-authentication required to log in as "alice" (on every login)`, 0},
	{"hosts alias as acl source opens port 22 from that address", "hosts", ciRunner, false, webServer, "deploy", rules.Accept, "deploy", `permitted to log in as "deploy"`, 0},
	{"same tag, other address: the network rule does not cover it", "hosts", ciRunner2, false, webServer, "deploy", rules.Reject, "", "not permitted to this node", -1},
	{"idpgroup:NAME makes a user holding IdP group NAME a member", "idp-groups", carolLaptop, false, prodServer, "ubuntu", rules.Accept, "ubuntu", `permitted to log in as "ubuntu"`, 0},
	{"idpgroup: members listed by login stay members", "idp-groups", bobLaptop, false, prodServer, "ubuntu", rules.Accept, "ubuntu", `permitted to log in as "ubuntu"`, 0},
	{"idpgroup: users without the IdP group are not members", "idp-groups", aliceLaptop, false, prodServer, "ubuntu", rules.Reject, "", "not permitted to this node", -1},
	{"IdP groups confer nothing unless mapped, even to a same-named group", "idp-groups", carolLaptop, false, webServer, "deploy", rules.Reject, "", "not permitted to this node", -1},
	{"IdP groups are ignored where the policy has no idpgroup:", "main", carolLaptop, false, prodServer, "ubuntu", rules.Reject, "", "not permitted to this node", -1},
	{"exact user beats *: a listed name maps to itself", "named-and-star", aliceLaptop, false, prodServer, "deploy", rules.Accept, "deploy", `permitted to log in as "deploy"`, 0},
	{"* maps any other non-root name to itself", "named-and-star", aliceLaptop, false, prodServer, "bob", rules.Accept, "bob", `permitted to log in as "bob"`, 0},
}

func loadConformance(t *testing.T, name string) *Policy {
	t.Helper()
	if name == "default" {
		return Default()
	}
	p, err := Parse(name+".hujson", []byte(conformancePolicies[name]))
	if err != nil {
		t.Fatalf("policy %s: %v", name, err)
	}
	return p
}

func TestConformance(t *testing.T) {
	if len(conformanceCases) < 40 {
		t.Errorf("only %d conformance cases", len(conformanceCases))
	}
	for _, c := range conformanceCases {
		t.Run(c.rule, func(t *testing.T) {
			p := loadConformance(t, c.policy)
			check := func(how string, v rules.Verdict) {
				t.Helper()
				if v.Action != c.want || v.LocalUser != c.local || v.Reason != c.reason || v.Rule != c.ruleIx {
					t.Errorf("%s: %s -> %s as %q under %s:\n got  %s %q %q rule %d\n want %s %q %q rule %d",
						how, c.src.Name, c.dst.Name, c.user, c.policy, v.Action, v.LocalUser, v.Reason, v.Rule,
						c.want, c.local, c.reason, c.ruleIx)
				}
			}
			// The agent's way: compiled rules for the destination, keyed by source address.
			addr := c.src.Addresses[0].Addr()
			if c.viaV6 {
				addr = c.src.Addresses[1].Addr()
			}
			check("compiled", p.Compile(testNetwork, c.dst).SSHVerdict(addr, c.user, localAccounts))
			// The console's and sshTests' way: identities alone.
			check("direct", p.SSHAccess(c.src, c.dst, c.user, localAccounts))
		})
	}
}
