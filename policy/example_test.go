package policy_test

import (
	"fmt"
	"net/netip"

	"tsconnect/policy"
	"tsconnect/policy/rules"
)

func Example() {
	p, err := policy.Parse("policy.hujson", []byte(`{
		"tagOwners": {"tag:prod": ["alice@example.com"]},
		"acls": [{"action": "accept", "src": ["autogroup:member"], "dst": ["tag:prod:22"]}],
		"ssh": [
			{"action": "accept", "src": ["autogroup:member"], "dst": ["tag:prod"], "users": ["ubuntu"]},
			{"action": "check", "src": ["alice@example.com"], "dst": ["tag:prod"], "users": ["root"]},
		],
	}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	alice := policy.Node{ID: 1, Name: "laptop", User: "alice@example.com",
		Addresses: []netip.Prefix{netip.MustParsePrefix("100.64.0.1/32")}}
	prod := policy.Node{ID: 2, Name: "prod", Tags: []string{"tag:prod"},
		Addresses: []netip.Prefix{netip.MustParsePrefix("100.64.0.2/32")}}

	// Control compiles the rules prod enforces...
	compiled := p.Compile(&policy.Network{Nodes: []policy.Node{alice, prod}}, prod)
	// ...and prod's SSH server asks them about each login.
	exists := func(name string) (rules.Account, bool) {
		uid := map[string]uint32{"ubuntu": 1000, "root": 0}
		n, ok := uid[name]
		return rules.Account{Name: name, UID: n}, ok
	}
	for _, user := range []string{"ubuntu", "root", "postgres"} {
		v := compiled.SSHVerdict(netip.MustParseAddr("100.64.0.1"), user, exists)
		fmt.Printf("%s: %s: %s\n", user, v.Action, v.Reason)
	}
	// Output:
	// ubuntu: accept: permitted to log in as "ubuntu"
	// root: check: re-authentication required to log in as "root" (valid for 12h)
	// postgres: reject: policy does not permit SSH as user "postgres"
}

func ExampleParse_error() {
	_, err := policy.Parse("policy.hujson", []byte(`{
  "ssh": [{
    "action": "accept",
    "src": ["autogroup:member"],
    "dst": ["autogroup:self"],
    "users": ["*"],
  }],
}`))
	fmt.Println(err)
	// Output:
	// policy.hujson:6:15: ssh[0].users: "*" is not a valid user
}
