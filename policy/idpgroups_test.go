package policy

import (
	"testing"

	"tsconnect/policy/rules"
)

// A group may include identity-provider groups (idpgroup:NAME); every use of the group
// then covers users whose Node.UserGroups hold NAME: network rules, SSH and tag ownership.
func TestIdPGroupsInFilterAndTagOwners(t *testing.T) {
	p, err := Parse("idp.hujson", []byte(`{
	"groups": {"group:eng": ["bob@example.com", "idpgroup:engineering"]},
	"tagOwners": {"tag:prod": ["group:eng"]},
	"acls": [{"action": "accept", "src": ["group:eng"], "dst": ["tag:prod:443"]}],
}`))
	if err != nil {
		t.Fatal(err)
	}
	f := p.Compile(testNetwork, prodServer).Filter
	for _, c := range []struct {
		who  string
		src  string
		want bool
	}{
		{"carol, through her IdP group", "100.64.0.4", true},
		{"bob, listed by login", "100.64.0.3", true},
		{"alice, in neither", "100.64.0.1", false},
	} {
		if got := f.Allows(ip(c.src), ap("100.64.0.10:443"), rules.ProtoTCP); got != c.want {
			t.Errorf("%s: allowed %v, want %v", c.who, got, c.want)
		}
	}
	if !p.CanApplyTagWithGroups("carol@other.org", []string{"sales", "engineering"}, "tag:prod") {
		t.Error("carol, holding IdP group engineering, may not apply tag:prod")
	}
	if p.CanApplyTag("carol@other.org", "tag:prod") || p.CanApplyTagWithGroups("carol@other.org", []string{"Engineering"}, "tag:prod") {
		t.Error("IdP groups must match exactly, and count only when given")
	}
	// A tagged node belongs to no user, so its UserGroups are ignored.
	tagged := withIdPGroups(node(20, "t", "carol@other.org", []string{"tag:prod"}, "100.64.0.20"), "engineering")
	if p.SSHAccess(tagged, prodServer, "root", localAccounts).Action != rules.Reject {
		t.Error("a tagged node counted as a member through UserGroups")
	}
}
