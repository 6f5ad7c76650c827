package console

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"tsconnect/console/api"
	"tsconnect/control"
)

func TestLoginLogoutAndCookie(t *testing.T) {
	e := newEnv(t)
	e.user("ada@example.com", control.RoleAdmin, "correct horse")
	c := e.client()

	c.do("GET", "/api/v1/me", nil).want(t, 401, "unauthenticated")
	c.login("ada@example.com", "wrong horse").want(t, 401, "bad_login")
	c.login("nobody@example.com", "correct horse").want(t, 401, "bad_login")

	a := c.login("Ada@Example.com", "correct horse").want(t, 200, "")
	var me struct {
		User struct {
			ID    int64  `json:"id"`
			Email string `json:"email"`
			Role  string `json:"role"`
		} `json:"user"`
		CSRFToken string `json:"csrfToken"`
	}
	a.decode(t, &me)
	if me.User.Email != "ada@example.com" || me.User.Role != "admin" || len(me.CSRFToken) < 40 {
		t.Errorf("login answer %s", a.raw)
	}
	var ck *http.Cookie
	for _, k := range (&http.Response{Header: a.header}).Cookies() {
		if k.Name == CookieName {
			ck = k
		}
	}
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Secure || len(ck.Value) < 43 {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/, not Secure over http, 256-bit value", ck)
	}
	for h, want := range map[string]string{
		"Content-Security-Policy": ContentSecurityPolicy, "X-Content-Type-Options": "nosniff",
		"Referrer-Policy": "same-origin", "Cache-Control": "no-store",
	} {
		if got := a.header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	got := c.do("GET", "/api/v1/me", nil).want(t, 200, "")
	if got.str("csrfToken") != me.CSRFToken {
		t.Errorf("/me csrfToken %q differs from the login's", got.str("csrfToken"))
	}

	// Logout needs the CSRF token, then the cookie is dead.
	c.do("POST", "/api/v1/logout", nil, CSRFHeader, "").want(t, 403, "csrf")
	c.do("POST", "/api/v1/logout", nil).want(t, 204, "")
	c.do("GET", "/api/v1/me", nil).want(t, 401, "unauthenticated")

	// Every attempt is in the audit log, newest first.
	c.mustLogin("ada@example.com", "correct horse")
	var audit struct {
		Events []struct {
			User, Method, Kind, Detail string
			OK                         bool
		} `json:"events"`
	}
	c.do("GET", "/api/v1/audit", nil).want(t, 200, "").decode(t, &audit)
	var oks, fails []string
	for _, ev := range audit.Events {
		if ev.Method != "password" || ev.Kind != "signin" {
			t.Errorf("event %+v", ev)
		}
		if ev.OK {
			oks = append(oks, ev.User)
		} else {
			fails = append(fails, ev.User)
		}
	}
	if strings.Join(oks, ",") != "ada@example.com,ada@example.com" || strings.Join(fails, ",") != "nobody@example.com,ada@example.com" {
		t.Errorf("audit: ok %v, failed %v", oks, fails)
	}
	if at, m, err := e.srv.LastAuth(t.Context(), me.User.ID); err != nil || at.IsZero() || m != control.AuthPassword {
		t.Errorf("LastAuth = %v %q %v", at, m, err)
	}
}

func TestLoginRateLimited(t *testing.T) {
	e := newEnv(t)
	e.user("ada@example.com", control.RoleAdmin, "correct horse")
	e.user("bo@example.com", control.RoleMember, "battery staple")
	c := e.client()
	for range maxFailuresPerEmail {
		c.login("ada@example.com", "guess").want(t, 401, "bad_login")
	}
	// Locked out even with the right password; another user is not.
	a := c.login("ada@example.com", "correct horse").want(t, 429, "rate_limited")
	if s, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || s <= 0 || s > 600 {
		t.Errorf("Retry-After %q: want seconds in (0, 600]", a.header.Get("Retry-After"))
	}
	c.login("bo@example.com", "battery staple").want(t, 200, "")

	// 20 failures from one address lock out that address for every email.
	for i := range maxFailuresPerAddr - maxFailuresPerEmail {
		c.login("x"+strconv.Itoa(i)+"@example.com", "guess").want(t, 401, "bad_login")
	}
	c.login("bo@example.com", "battery staple").want(t, 429, "rate_limited")
}

func TestCSRFAndOrigin(t *testing.T) {
	e := newEnv(t)
	e.user("ada@example.com", control.RoleAdmin, "correct horse")

	// Login itself needs the console's own origin.
	evil := e.client()
	evil.origin = "http://evil.example"
	evil.login("ada@example.com", "correct horse").want(t, 403, "csrf")
	noOrigin := e.client()
	noOrigin.origin = ""
	noOrigin.login("ada@example.com", "correct horse").want(t, 403, "csrf")
	noOrigin.do("POST", "/api/v1/login", map[string]string{"email": "ada@example.com", "password": "correct horse"},
		"Sec-Fetch-Site", "same-origin").want(t, 200, "")

	c := e.client().mustLogin("ada@example.com", "correct horse")
	key := map[string]any{"ephemeral": true}
	c.do("POST", "/api/v1/keys", key, CSRFHeader, "").want(t, 403, "csrf")
	c.do("POST", "/api/v1/keys", key, CSRFHeader, "not-the-token").want(t, 403, "csrf")
	c.do("POST", "/api/v1/keys", key, "Origin", "http://evil.example").want(t, 403, "csrf")
	c.do("POST", "/api/v1/keys", key, "Origin", "", "Sec-Fetch-Site", "cross-site").want(t, 403, "csrf")
	c.do("POST", "/api/v1/keys", key, "Origin", "", "Sec-Fetch-Site", "same-origin").want(t, 201, "")
	c.do("POST", "/api/v1/keys", key).want(t, 201, "")
	// Reads need no token.
	c.csrf = ""
	c.do("GET", "/api/v1/keys", nil).want(t, 200, "")
}

func TestSessionsSurviveRestart(t *testing.T) {
	e := newEnv(t)
	e.user("ada@example.com", control.RoleAdmin, "correct horse")
	c := e.client().mustLogin("ada@example.com", "correct horse")
	e.restart()
	if a := c.do("GET", "/api/v1/me", nil).want(t, 200, ""); a.str("csrfToken") != c.csrf {
		t.Errorf("csrf token changed across a restart")
	}
	c.do("POST", "/api/v1/keys", map[string]any{}).want(t, 201, "")
}

func TestRoles(t *testing.T) {
	e := newEnv(t)
	admin := e.user("ada@example.com", control.RoleAdmin, "correct horse")
	e.user("bo@example.com", control.RoleMember, "battery staple")
	a := e.client().mustLogin("ada@example.com", "correct horse")
	m := e.client().mustLogin("bo@example.com", "battery staple")
	_, _, node := e.register(control.AuthKeyOptions{User: admin.ID}, hostinfo("web"))
	id := strconv.FormatInt(node.ID, 10)

	for _, r := range []struct{ method, path string }{
		{"GET", "/api/v1/users"}, {"POST", "/api/v1/users"}, {"DELETE", "/api/v1/users/1"},
		{"GET", "/api/v1/policy"}, {"PUT", "/api/v1/policy"}, {"POST", "/api/v1/policy/validate"},
		{"GET", "/api/v1/audit"}, {"DELETE", "/api/v1/nodes/" + id},
		{"PUT", "/api/v1/nodes/" + id + "/tags"}, {"POST", "/api/v1/nodes/" + id + "/expire"},
		{"PUT", "/api/v1/nodes/" + id + "/key-expiry"}, {"GET", "/api/v1/settings/node-key-expiry"},
		{"PUT", "/api/v1/settings/node-key-expiry"},
	} {
		if got := m.do(r.method, r.path, map[string]any{}); got.status != 403 || got.str("code") != "forbidden" || !strings.Contains(got.str("error"), "bo@example.com") {
			t.Errorf("member %s %s: %d %s, want 403 forbidden", r.method, r.path, got.status, got.raw)
		}
	}
	// Members see every machine, and their own keys only.
	var ms api.NodeList
	m.do("GET", "/api/v1/nodes", nil).want(t, 200, "").decode(t, &ms)
	if len(ms.Nodes) != 1 || ms.Nodes[0].Owner == nil || ms.Nodes[0].Owner.Email != "ada@example.com" {
		t.Errorf("member's machines: %+v", ms)
	}
	m.do("POST", "/api/v1/keys", map[string]any{"reusable": true}).want(t, 201, "")
	var ks struct{ Keys []api.Key }
	m.do("GET", "/api/v1/keys", nil).want(t, 200, "").decode(t, &ks)
	if len(ks.Keys) != 1 || ks.Keys[0].Owner.Email != "bo@example.com" {
		t.Errorf("member's keys: %+v", ks.Keys)
	}
	a.do("GET", "/api/v1/keys", nil).want(t, 200, "").decode(t, &ks)
	if len(ks.Keys) != 2 {
		t.Errorf("admin sees %d keys, want 2", len(ks.Keys))
	}
	// A member revokes only their own keys.
	var adminKey int64
	for _, k := range ks.Keys {
		if k.Owner.Email == "ada@example.com" {
			adminKey = k.ID
		}
	}
	m.do("DELETE", "/api/v1/keys/"+strconv.FormatInt(adminKey, 10), nil).want(t, 403, "forbidden")
	a.do("DELETE", "/api/v1/keys/"+strconv.FormatInt(adminKey, 10), nil).want(t, 204, "")

	// Admin actions work for the admin.
	a.do("GET", "/api/v1/users", nil).want(t, 200, "")
	a.do("DELETE", "/api/v1/nodes/"+id, nil).want(t, 204, "")
	m.do("GET", "/api/v1/nodes", nil).want(t, 200, "").decode(t, &ms)
	if len(ms.Nodes) != 0 {
		t.Errorf("deleted machine still listed: %+v", ms.Nodes)
	}
}

func TestUsersCreateAndDelete(t *testing.T) {
	e := newEnv(t)
	e.user("ada@example.com", control.RoleAdmin, "correct horse")
	a := e.client().mustLogin("ada@example.com", "correct horse")
	a.do("POST", "/api/v1/users", map[string]any{"email": "cy@example.com", "role": "member", "password": "short"}).want(t, 400, "bad_request")
	u := a.do("POST", "/api/v1/users", map[string]any{"email": "cy@example.com", "role": "member", "password": "a long password"}).want(t, 201, "")
	a.do("POST", "/api/v1/users", map[string]any{"email": "cy@example.com", "role": "member"}).want(t, 409, "exists")
	cy := e.client().mustLogin("cy@example.com", "a long password")
	cy.do("GET", "/api/v1/me", nil).want(t, 200, "")

	id := strconv.FormatInt(int64(u.body["id"].(float64)), 10)
	me := strconv.FormatInt(int64(a.do("GET", "/api/v1/me", nil).body["user"].(map[string]any)["id"].(float64)), 10)
	a.do("DELETE", "/api/v1/users/"+me, nil).want(t, 400, "bad_request")
	a.do("DELETE", "/api/v1/users/"+id, nil).want(t, 200, "")
	cy.do("GET", "/api/v1/me", nil).want(t, 401, "unauthenticated")
	cy.login("cy@example.com", "a long password").want(t, 401, "bad_login")
}
