package control

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// TestOIDCUser: a first sign-in creates a member; the next finds the same user by subject
// even with a new email; a user an admin made is bound at their first sign-in; an email
// bound to another subject is refused; without create, strangers are not found; groups
// follow each sign-in and decide what the policy's idpgroup: entries give.
func TestOIDCUser(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	const iss = "https://idp.example"
	if _, err := e.s.SetPolicy(ctx, []byte(`{
		"groups": {"group:eng": ["idpgroup:engineering"]},
		"tagOwners": {"tag:server": ["group:eng"]},
		"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
		"ssh": [{"action": "accept", "src": ["group:eng"], "dst": ["tag:server"], "users": ["root"]}],
	}`), "test"); err != nil {
		t.Fatal(err)
	}
	alice := OIDCIdentity{Issuer: iss, Subject: "a1", Email: "Alice@Example.com", Name: "Alice", Groups: []string{"engineering", "engineering"}}
	u, err := e.s.OIDCUser(ctx, alice, true)
	if err != nil || u.Email != "alice@example.com" || u.Role != RoleMember || u.DisplayName != "Alice" {
		t.Fatalf("first sign-in: %+v %v; want member alice@example.com", u, err)
	}
	if g := e.s.UserGroups(u.ID); !slices.Equal(g, []string{"engineering"}) {
		t.Fatalf("groups %v", g)
	}
	if err := e.s.CheckTagOwnership(ctx, u.ID, []string{"tag:server"}); err != nil {
		t.Fatalf("alice in engineering may not apply tag:server: %v", err)
	}
	_, server := e.mustRegister(e.authKey(AuthKeyOptions{User: u.ID, Tags: []string{"tag:server"}, CreatedBy: u.ID}), "server")
	serverID := server.ID
	logins, err := e.s.SSHLoginsFor(ctx, u.ID, serverID)
	if err != nil || !LoginAllowed(logins, "root") {
		t.Fatalf("ssh logins of alice in engineering: %v %v; want root", logins, err)
	}

	alice.Email, alice.Groups = "alice.new@example.com", []string{"sales"}
	u2, err := e.s.OIDCUser(ctx, alice, true)
	if err != nil || u2.ID != u.ID || u2.Email != "alice.new@example.com" {
		t.Fatalf("second sign-in: %+v %v; want the same user, with the provider's new email", u2, err)
	}
	if logins, _ := e.s.SSHLoginsFor(ctx, u.ID, serverID); LoginAllowed(logins, "root") {
		t.Fatalf("alice in sales still may SSH as root: %v", logins)
	}
	if err := e.s.CheckTagOwnership(ctx, u.ID, []string{"tag:server"}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("alice in sales applying tag:server: %v, want ErrForbidden", err)
	}

	bob := e.user("bob@example.com")
	got, err := e.s.OIDCUser(ctx, OIDCIdentity{Issuer: iss, Subject: "b1", Email: "bob@example.com"}, false)
	if err != nil || got.ID != bob.ID {
		t.Fatalf("bob's first sign-in: %+v %v; want the existing bob", got, err)
	}
	_, err = e.s.OIDCUser(ctx, OIDCIdentity{Issuer: iss, Subject: "b2", Email: "bob@example.com"}, true)
	if !errors.Is(err, ErrForbidden) {
		t.Fatalf("another subject with bob's email: %v, want ErrForbidden", err)
	}
	_, err = e.s.OIDCUser(ctx, OIDCIdentity{Issuer: iss, Subject: "c1", Email: "carol@example.com"}, false)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("a stranger without create: %v, want ErrNotFound", err)
	}
	m, err := e.s.SignInMethodsOf(ctx, bob.ID)
	if err != nil || m.Password || m.OIDCIssuer != iss {
		t.Fatalf("bob's sign-in methods: %+v %v", m, err)
	}
	e.restart()
	if g := e.s.UserGroups(u.ID); !slices.Equal(g, []string{"sales"}) {
		t.Fatalf("groups after restart: %v", g)
	}
}
