package console

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"tsconnect/console/api"
	"tsconnect/control"
	"tsconnect/controlws"
	"tsconnect/internal/testopproc"
	"tsconnect/oidc"
	"tsconnect/policy/rules"
)

// Accounts of the test OpenID Provider.
var (
	ssoAlice = testopproc.User{Email: "alice@example.com", Password: "alice-at-idp", Name: "Alice Liddell", EmailVerified: true, Groups: []string{"engineering"}}
	ssoBob   = testopproc.User{Email: "bob@example.com", Password: "bob-at-idp", EmailVerified: true, Groups: []string{"sales"}}
	ssoCarol = testopproc.User{Email: "carol@other.org", Password: "carol-at-idp", EmailVerified: true, Groups: []string{"engineering"}}
	ssoDave  = testopproc.User{Email: "dave@example.com", Password: "dave-at-idp", EmailVerified: false, Groups: []string{"engineering"}}
)

// newSSOEnv is an env whose console signs in with a real OpenID Provider (internal/testop,
// on ory/fosite) that knows alice, bob, carol and dave. cfg gives the allow lists.
func newSSOEnv(t *testing.T, cfg oidc.Config) (*env, *testopproc.OP) {
	t.Helper()
	return newSSOEnvWith(t, cfg, testopproc.Options{})
}

// newSSOEnvWith is newSSOEnv with more provider options (its users and client are added).
func newSSOEnvWith(t *testing.T, cfg oidc.Config, opts testopproc.Options) (*env, *testopproc.OP) {
	t.Helper()
	var op *testopproc.OP
	e := newEnvWith(t, func(e *env) {
		callback := e.hs.URL + OIDCCallbackPath
		var err error
		opts.Users = append(opts.Users, ssoAlice, ssoBob, ssoCarol, ssoDave)
		opts.Clients = append(opts.Clients, testopproc.Client{ID: "tsconnect", Secret: "client-secret", RedirectURIs: []string{callback}})
		opts.Logf = t.Logf
		op = testopproc.Start(t, opts)
		tr := &http.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		cfg.Issuer, cfg.ClientID, cfg.ClientSecret, cfg.RedirectURL = op.Issuer(), "tsconnect", "client-secret", callback
		cfg.HTTPClient, cfg.Logf = &http.Client{Transport: tr}, t.Logf
		if e.rp, err = oidc.New(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
	})
	return e, op
}

var providerForm = regexp.MustCompile(`<form method="post" action="([^"]*)"`)

// sso is a browser's single sign-on: it visits path on the console, follows the redirect to
// the provider, submits its login form, and returns the console's answer at the callback.
func (c *client) sso(path, email, password string) answer {
	t := c.e.t
	t.Helper()
	follow, callback, resp, body := c.ssoStart(path)
	m := providerForm.FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("%s: expected the provider's login form, got %s: %s", path, resp.Status, body)
	}
	action, err := resp.Request.URL.Parse(html.UnescapeString(string(m[1])))
	if err != nil {
		t.Fatal(err)
	}
	resp, err = follow.PostForm(action.String(), url.Values{"email": {email}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, callback) {
		t.Fatalf("the provider's form answered %s, Location %q; want the console's callback", resp.Status, loc)
	}
	return c.do("GET", strings.TrimPrefix(loc, c.e.hs.URL), nil)
}

// ssoStart visits path on the console and follows redirects up to (not into) the console's
// callback, returning the client that does so, the callback URL, and the last answer.
func (c *client) ssoStart(path string) (follow *http.Client, callback string, resp *http.Response, body []byte) {
	t := c.e.t
	t.Helper()
	callback = c.e.hs.URL + OIDCCallbackPath
	follow = &http.Client{Jar: c.hc.Jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), callback) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	resp, err := follow.Get(c.e.hs.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	return follow, callback, resp, body
}

// sessionCookie returns the Set-Cookie of the console session in an answer, if any.
func sessionCookie(a answer) *http.Cookie {
	for _, ck := range (&http.Response{Header: a.header}).Cookies() {
		if ck.Name == CookieName && ck.Value != "" {
			return ck
		}
	}
	return nil
}

// wantPage checks that an answer is one of the console's script-free HTML pages.
func wantPage(t *testing.T, a answer, status int, contains ...string) string {
	t.Helper()
	body := string(a.raw)
	if a.status != status {
		t.Fatalf("got %d, want %d: %s", a.status, status, body)
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type %q, want text/html", ct)
	}
	if a.header.Get("Content-Security-Policy") != ContentSecurityPolicy {
		t.Errorf("CSP %q, want the console's", a.header.Get("Content-Security-Policy"))
	}
	if strings.Contains(strings.ToLower(body), "<script") || strings.Contains(strings.ToLower(body), "javascript:") {
		t.Errorf("page carries a script: %s", body)
	}
	for _, s := range contains {
		if !strings.Contains(body, s) {
			t.Errorf("page lacks %q: %s", s, body)
		}
	}
	return body
}

func TestAuthMethods(t *testing.T) {
	e := newEnv(t)
	a := e.client().do("GET", "/api/v1/auth-methods", nil).want(t, http.StatusOK, "")
	if a.body["password"] != true || a.body["oidc"] != nil {
		t.Fatalf("without a provider: got %s, want password true and oidc null", a.raw)
	}
	e, op := newSSOEnv(t, oidc.Config{})
	a = e.client().do("GET", "/api/v1/auth-methods", nil).want(t, http.StatusOK, "")
	o, _ := a.body["oidc"].(map[string]any)
	if o["issuer"] != op.Issuer() || o["startURL"] != OIDCStartPath {
		t.Fatalf("with a provider: got %s, want its issuer %s", a.raw, op.Issuer())
	}
}

// TestSSOSignIn: alice's first sign-in creates her as a member with her groups and leaves
// a Strict session cookie set by a script-free page that moves on with a meta refresh;
// her second sign-in finds the same user.
func TestSSOSignIn(t *testing.T) {
	e, _ := newSSOEnv(t, oidc.Config{})
	ctx := context.Background()
	c := e.client()
	a := c.sso(OIDCStartPath+"?returnTo="+url.QueryEscape("/admin/#machines"), ssoAlice.Email, ssoAlice.Password)
	body := wantPage(t, a, http.StatusOK, `<meta http-equiv="refresh" content="0;url=/admin/#machines">`, "Signed in as alice@example.com")
	ck := sessionCookie(a)
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" {
		t.Fatalf("callback cookie %+v; want an HttpOnly SameSite=Strict session cookie at /\n%s", ck, body)
	}
	me := c.do("GET", "/api/v1/me", nil).want(t, http.StatusOK, "")
	var got api.Me
	me.decode(t, &got)
	if got.User.Email != ssoAlice.Email || got.User.Role != string(control.RoleMember) || got.User.DisplayName != "Alice Liddell" {
		t.Fatalf("me: %+v; want alice, a member named Alice Liddell", got.User)
	}
	if g := e.srv.UserGroups(got.User.ID); !slices.Equal(g, []string{"engineering"}) {
		t.Fatalf("groups %v, want [engineering]", g)
	}
	ev, err := e.srv.AuditLog(ctx, 0, 10)
	if err != nil || len(ev) == 0 || ev[0].Method != control.AuthOIDC || ev[0].Kind != control.AuthSignIn || !ev[0].OK || ev[0].User != ssoAlice.Email {
		t.Fatalf("audit log %+v (%v); want alice's oidc signin first", ev, err)
	}
	if at, m, _ := e.srv.LastAuth(ctx, got.User.ID); at.IsZero() || m != control.AuthOIDC {
		t.Fatalf("last auth %v %q; want now by oidc", at, m)
	}

	// The same person again: the same user; a returnTo off the console lands on it.
	c2 := e.client()
	a = c2.sso(OIDCStartPath+"?returnTo="+url.QueryEscape("https://evil.example/"), ssoAlice.Email, ssoAlice.Password)
	wantPage(t, a, http.StatusOK, `content="0;url=/admin/"`)
	us, _ := e.srv.Users(ctx)
	if len(us) != 1 {
		t.Fatalf("users after two sign-ins: %+v; want alice once", us)
	}
	// The API's start route works as well and refuses check pages as a destination.
	a = e.client().sso("/api/v1/oidc/start?returnTo="+url.QueryEscape("/check/0123"), ssoAlice.Email, ssoAlice.Password)
	wantPage(t, a, http.StatusOK, `content="0;url=/admin/"`)
}

// TestSSORefusals: an unverified email and an email outside the allowed domains are
// refused with a page saying why, and create no user and no session.
func TestSSORefusals(t *testing.T) {
	e, _ := newSSOEnv(t, oidc.Config{AllowedDomains: []string{"example.com"}})
	for _, tc := range []struct {
		u    testopproc.User
		want string
	}{
		{ssoDave, "not verified"},
		{ssoCarol, `domain &#34;other.org&#34; is not allowed`},
	} {
		c := e.client()
		a := c.sso(OIDCStartPath, tc.u.Email, tc.u.Password)
		wantPage(t, a, http.StatusForbidden, "Sign-in refused", tc.want)
		if ck := sessionCookie(a); ck != nil {
			t.Errorf("%s: refused sign-in set a session cookie", tc.u.Email)
		}
		c.do("GET", "/api/v1/me", nil).want(t, http.StatusUnauthorized, codeUnauthenticated)
	}
	if us, _ := e.srv.Users(context.Background()); len(us) != 0 {
		t.Fatalf("refused sign-ins created users: %+v", us)
	}
	ev, _ := e.srv.AuditLog(context.Background(), 0, 10)
	if len(ev) != 2 || ev[0].OK || ev[1].OK || ev[0].Method != control.AuthOIDC {
		t.Fatalf("audit log %+v; want two failed oidc sign-ins", ev)
	}
	// alice, in the allowed domain, gets in.
	wantPage(t, e.client().sso(OIDCStartPath, ssoAlice.Email, ssoAlice.Password), http.StatusOK, "Signed in as alice@example.com")
}

// TestSSOLinksExistingUser: an admin made alice (an admin, with a password) before her
// first single sign-on; the sign-in is hers, her role stays.
func TestSSOLinksExistingUser(t *testing.T) {
	e, _ := newSSOEnv(t, oidc.Config{})
	alice := e.user(ssoAlice.Email, control.RoleAdmin, "local-password")
	c := e.client()
	wantPage(t, c.sso(OIDCStartPath, ssoAlice.Email, ssoAlice.Password), http.StatusOK)
	var got api.Me
	c.do("GET", "/api/v1/me", nil).want(t, http.StatusOK, "").decode(t, &got)
	if got.User.ID != alice.ID || got.User.Role != string(control.RoleAdmin) {
		t.Fatalf("me %+v; want the existing admin alice %d", got.User, alice.ID)
	}
	m, err := e.srv.SignInMethodsOf(context.Background(), alice.ID)
	if err != nil || !m.Password || m.OIDCIssuer != e.rp.Issuer() {
		t.Fatalf("sign-in methods %+v (%v); want password and the provider", m, err)
	}
}

const groupPolicy = `{
	"groups": {"group:eng": ["idpgroup:engineering"]},
	"tagOwners": {"tag:server": ["alice@example.com"], "tag:build": ["group:eng"]},
	"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
	"ssh": [{"action": "accept", "src": ["group:eng"], "dst": ["tag:server"], "users": ["root"]}],
}`

// TestSSOGroupsInPolicy: the provider's group "engineering" makes alice a member of
// group:eng, which may SSH to the server as root and owns tag:build; when the provider
// moves her to "sales", her next sign-in takes that away, and the server's map follows.
func TestSSOGroupsInPolicy(t *testing.T) {
	e, op := newSSOEnv(t, oidc.Config{})
	ctx := context.Background()
	c := e.client()
	wantPage(t, c.sso(OIDCStartPath, ssoAlice.Email, ssoAlice.Password), http.StatusOK)
	c.csrf = c.do("GET", "/api/v1/me", nil).want(t, http.StatusOK, "").str("csrfToken")
	alice, err := e.srv.UserByEmail(ctx, ssoAlice.Email)
	if err != nil {
		t.Fatal(err)
	}
	e.setPolicy(groupPolicy)
	server, serverKey, serverNode := e.register(control.AuthKeyOptions{User: alice.ID, Tags: []string{"tag:server"}, CreatedBy: alice.ID},
		controlws.Hostinfo{Hostname: "server", OS: "linux"})
	_, _, laptop := e.register(control.AuthKeyOptions{User: alice.ID}, controlws.Hostinfo{Hostname: "laptop", OS: "linux"})
	maps := make(chan *controlws.NetworkMap, 256)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		server.WatchMaps(wctx, controlws.MapRequest{NodeKey: serverKey.Public()}, func(nm *controlws.NetworkMap) { maps <- nm })
	}()
	defer func() { stop(); <-done }()
	laptopAddr := laptop.Addresses[0].Addr()
	waitMap := func(admits bool) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case nm := <-maps:
				got := slices.ContainsFunc(nm.SSHRules, func(r rules.SSHRule) bool { return slices.Contains(r.Principals, laptopAddr) })
				if got == admits {
					return
				}
			case <-deadline:
				t.Fatalf("the server's map never came to admit=%v SSH from alice's laptop %s", admits, laptopAddr)
			}
		}
	}
	waitMap(true)

	sshUsers := func() answer {
		return c.do("GET", "/api/v1/nodes/"+strconv.FormatInt(serverNode.ID, 10)+"/ssh-users", nil).want(t, http.StatusOK, "")
	}
	if a := sshUsers(); !strings.Contains(string(a.raw), `"name":"root"`) {
		t.Fatalf("ssh-users as alice in engineering: %s; want root", a.raw)
	}
	c.do("POST", "/api/v1/keys", map[string]any{"tags": []string{"tag:build"}, "expiresIn": 600}).want(t, http.StatusCreated, "")

	ssoAlice2 := ssoAlice
	ssoAlice2.Groups = []string{"sales"}
	op.AddUser(ssoAlice2)
	wantPage(t, e.client().sso(OIDCStartPath, ssoAlice.Email, ssoAlice.Password), http.StatusOK)
	if g := e.srv.UserGroups(alice.ID); !slices.Equal(g, []string{"sales"}) {
		t.Fatalf("groups after the second sign-in: %v, want [sales]", g)
	}
	if a := sshUsers(); strings.Contains(string(a.raw), `"root"`) || a.str("reason") == "" {
		t.Fatalf("ssh-users as alice in sales: %s; want none, with a reason", a.raw)
	}
	c.do("POST", "/api/v1/keys", map[string]any{"tags": []string{"tag:build"}, "expiresIn": 600}).want(t, http.StatusForbidden, "")
	waitMap(false)

	// Groups survive a restart (they are in the store).
	op.AddUser(ssoAlice)
	wantPage(t, e.client().sso(OIDCStartPath, ssoAlice.Email, ssoAlice.Password), http.StatusOK)
	stop()
	<-done
	e.restart()
	if g := e.srv.UserGroups(alice.ID); !slices.Equal(g, []string{"engineering"}) {
		t.Fatalf("groups after a restart: %v, want [engineering]", g)
	}
}
