package console

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"tsconnect/control"
	"tsconnect/internal/testopproc"
	"tsconnect/oidc"
)

// TestSSOClaimsOnlyInUserinfo: a provider that puts email, email_verified and the groups
// (nested, as realm_access.roles) only in its userinfo answer still signs alice in, with
// her groups.
func TestSSOClaimsOnlyInUserinfo(t *testing.T) {
	e, _ := newSSOEnvWith(t, oidc.Config{GroupsClaim: "realm_access.roles"},
		testopproc.Options{ClaimsInUserinfoOnly: true, GroupsClaim: "realm_access.roles"})
	wantPage(t, e.client().sso(OIDCStartPath, ssoAlice.Email, ssoAlice.Password), http.StatusOK, "Signed in as alice@example.com")
	u, err := e.srv.UserByEmail(context.Background(), ssoAlice.Email)
	if err != nil {
		t.Fatal(err)
	}
	if g := e.srv.UserGroups(u.ID); !slices.Equal(g, []string{"engineering"}) {
		t.Fatalf("groups %v, want [engineering] from userinfo's realm_access.roles", g)
	}
}

// TestSSOEmailChangeCannotTakeOverAnotherUser: when the provider changes erin's email,
// her user follows (same id, new email); when it gives her bob's email, the sign-in is
// refused and audited, and neither user changes.
func TestSSOEmailChangeCannotTakeOverAnotherUser(t *testing.T) {
	erin := testopproc.User{Subject: "erin-subject", Email: "erin@example.com", Password: "erin-at-idp", EmailVerified: true}
	e, op := newSSOEnvWith(t, oidc.Config{}, testopproc.Options{Users: []testopproc.User{erin}})
	ctx := context.Background()
	wantPage(t, e.client().sso(OIDCStartPath, erin.Email, erin.Password), http.StatusOK, "Signed in as erin@example.com")
	first, err := e.srv.UserByEmail(ctx, erin.Email)
	if err != nil {
		t.Fatal(err)
	}
	renamed := erin
	renamed.Email = "erin.smith@example.com"
	op.AddUser(renamed)
	wantPage(t, e.client().sso(OIDCStartPath, renamed.Email, renamed.Password), http.StatusOK, "Signed in as erin.smith@example.com")
	if u, err := e.srv.UserByID(ctx, first.ID); err != nil || u.Email != renamed.Email {
		t.Fatalf("user %d after the provider's email change: %+v %v; want erin.smith@example.com", first.ID, u, err)
	}

	bob := e.user(ssoBob.Email, control.RoleAdmin, "bob-local-password")
	takeover := erin
	takeover.Email = ssoBob.Email
	op.AddUser(takeover) // replaces the provider's bob: erin's subject now claims bob's email
	c := e.client()
	wantPage(t, c.sso(OIDCStartPath, takeover.Email, takeover.Password), http.StatusForbidden, "already has")
	c.do("GET", "/api/v1/me", nil).want(t, http.StatusUnauthorized, codeUnauthenticated)
	if u, _ := e.srv.UserByID(ctx, first.ID); u.Email != renamed.Email {
		t.Fatalf("erin's user is now %q, want unchanged", u.Email)
	}
	if u, _ := e.srv.UserByID(ctx, bob.ID); u.Email != ssoBob.Email || u.Role != control.RoleAdmin {
		t.Fatalf("bob's user is now %+v, want unchanged", u)
	}
	ev, _ := e.srv.AuditLog(ctx, 0, 1)
	if len(ev) != 1 || ev[0].OK || ev[0].Method != control.AuthOIDC || !strings.Contains(ev[0].Detail, "already has") {
		t.Fatalf("audit %+v; want the refused sign-in", ev)
	}
}

// TestAnonymousOIDCStartFloodDoesNotBlockSSO: more anonymous GET /auth/oidc/start than
// the old table of sign-ins in progress held (10,000) leave alice's sign-in working.
func TestAnonymousOIDCStartFloodDoesNotBlockSSO(t *testing.T) {
	e, _ := newSSOEnv(t, oidc.Config{})
	flood := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for i := range 10050 {
		resp, err := flood.Get(e.hs.URL + OIDCStartPath)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("anonymous start %d answered %s", i, resp.Status)
		}
	}
	wantPage(t, e.client().sso(OIDCStartPath, ssoAlice.Email, ssoAlice.Password), http.StatusOK, "Signed in as alice@example.com")
}

// TestForgedCallbackFloodDoesNotFillAuditLog: 200 anonymous callbacks with made-up states
// are all refused, and leave one coalesced row in the audit log, not 200.
func TestForgedCallbackFloodDoesNotFillAuditLog(t *testing.T) {
	e, _ := newSSOEnv(t, oidc.Config{})
	c := e.client()
	for i := range 200 {
		a := c.do("GET", OIDCCallbackPath+"?code=x&state=forged-"+strings.Repeat("s", i%50), nil)
		if a.status != http.StatusForbidden {
			t.Fatalf("forged callback %d: %d, want 403", i, a.status)
		}
	}
	ev, _ := e.srv.AuditLog(context.Background(), 0, 1000)
	if len(ev) != 1 || ev[0].OK {
		t.Fatalf("audit log after 200 forged callbacks: %d rows, want 1", len(ev))
	}
}
