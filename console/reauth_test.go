package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"tsconnect/control"
	"tsconnect/controlws"
	"tsconnect/internal/testopproc"
	"tsconnect/oidc"
)

// periodCheckPolicy: members may SSH to tag:server as root if they authenticated within the hour.
const periodCheckPolicy = `{
	"tagOwners": {"tag:server": ["alice@example.com"]},
	"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
	"ssh": [{"action": "check", "src": ["autogroup:member"], "dst": ["tag:server"], "users": ["root"], "checkPeriod": "1h"}],
}`

// signInElsewhere signs the browser in at the provider for another application (client
// "other-app"), leaving the provider's session cookie in c's jar.
func (c *client) signInElsewhere(op *testopproc.OP, email, password string) {
	t := c.e.t
	t.Helper()
	q := url.Values{"client_id": {"other-app"}, "response_type": {"code"}, "scope": {"openid email"},
		"redirect_uri": {"http://127.0.0.1:1/other"}, "state": {"state-of-other-app"}, "nonce": {"nonce-of-other-app"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
	resp, err := c.hc.PostForm(op.Issuer()+"/authorize?"+q.Encode(), url.Values{"email": {email}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "http://127.0.0.1:1/other?code=") {
		t.Fatalf("sign-in at the provider for another app: %s, Location %q", resp.Status, loc)
	}
}

// ssoSilent is a single sign-on that the provider answers without its form (its session).
func (c *client) ssoSilent(path string) answer {
	t := c.e.t
	t.Helper()
	_, callback, resp, body := c.ssoStart(path)
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, callback) {
		t.Fatalf("%s: expected a silent sign-in (a redirect to the callback), got %s: %s", path, resp.Status, body)
	}
	return c.do("GET", strings.TrimPrefix(loc, c.e.hs.URL), nil)
}

// TestSilentSSODoesNotPassCheck: alice signed in at the provider two hours ago (for
// another application); a silent single sign-on to the console now counts at that time,
// so her SSH login under a one-hour check rule is held, and only a forced fresh sign-in
// at the provider (prompt=login, max_age=0, from the check page) lets it in.
func TestSilentSSODoesNotPassCheck(t *testing.T) {
	e, op := newSSOEnvWith(t, oidc.Config{}, testopproc.Options{RememberSignIns: true,
		Clients: []testopproc.Client{{ID: "other-app", Secret: "other-secret", RedirectURIs: []string{"http://127.0.0.1:1/other"}}}})
	ctx := context.Background()
	c := e.client()
	c.signInElsewhere(op, ssoAlice.Email, ssoAlice.Password)
	op.BackdateSignIns(2 * time.Hour)
	logins := op.Logins()
	wantPage(t, c.ssoSilent(OIDCStartPath), http.StatusOK, "Signed in as alice@example.com")
	if op.Logins() != logins {
		t.Fatal("the provider asked for a password: the sign-in was not silent")
	}
	alice, err := e.srv.UserByEmail(ctx, ssoAlice.Email)
	if err != nil {
		t.Fatal(err)
	}
	if at, _, _ := e.srv.LastAuth(ctx, alice.ID); time.Since(at) < 119*time.Minute {
		t.Fatalf("last authentication %v (%v ago), want the provider's auth_time two hours ago", at, time.Since(at).Round(time.Second))
	}
	cn := newCheckNet(e, "laptop")
	e.setPolicy(periodCheckPolicy)
	h := cn.ask(cn.laptop) // fails if the silent sign-in passed the check
	a := c.sso("/check/"+h.id+"/sso", ssoAlice.Email, ssoAlice.Password)
	wantPage(t, a, http.StatusOK, "Approved")
	if v := h.final(t); v.Verdict != controlws.CheckAccept {
		t.Fatalf("verdict after a fresh sign-in %+v, want accept", v)
	}
	if op.Logins() != logins+1 {
		t.Fatalf("the provider took %d password sign-ins for the check, want 1", op.Logins()-logins)
	}
}

// TestSSOWithoutAuthTimeNeverCountsForChecks: a provider that sends no auth_time signs
// alice in to the console, but that proves nothing for check rules: her SSH login is held.
func TestSSOWithoutAuthTimeNeverCountsForChecks(t *testing.T) {
	e, _ := newSSOEnvWith(t, oidc.Config{}, testopproc.Options{NoAuthTime: true})
	ctx := context.Background()
	wantPage(t, e.client().sso(OIDCStartPath, ssoAlice.Email, ssoAlice.Password), http.StatusOK, "Signed in as alice@example.com")
	alice, err := e.srv.UserByEmail(ctx, ssoAlice.Email)
	if err != nil {
		t.Fatal(err)
	}
	if at, _, _ := e.srv.LastAuth(ctx, alice.ID); !at.IsZero() {
		t.Fatalf("last authentication %v after a sign-in without auth_time, want none", at)
	}
	cn := newCheckNet(e, "laptop")
	e.setPolicy(periodCheckPolicy)
	h := cn.ask(cn.laptop)
	h.stillHeld(t, e)
	ev, _ := e.srv.AuditLog(ctx, 0, 100)
	for _, x := range ev {
		if x.Kind == control.AuthSignIn && x.Method == control.AuthOIDC && !strings.Contains(x.Detail, "no auth_time") {
			t.Errorf("audit detail %q does not say the sign-in had no auth_time", x.Detail)
		}
	}
}
