package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"tsconnect/console/api"
	"tsconnect/control"
)

// wantErrorShape checks that a is an error answer in the one shape, api.Error: JSON with
// exactly the documented fields, a code and a message.
func wantErrorShape(t *testing.T, how string, a answer, status int, code string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("%s: status %d %s, want %d %s", how, a.status, a.raw, status, code)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", how, ct)
	}
	var e api.Error
	dec := json.NewDecoder(bytes.NewReader(a.raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || e.Code != code || e.Message == "" {
		t.Errorf("%s: body %s (%v); want {\"code\": %q, \"error\": \"…\"}", how, a.raw, err, code)
	}
}

// TestOneErrorShape: the same refusals answered to a sign-in, the local admin on the socket
// and an API token have one shape and one code; so do the refusals only one of them meets.
func TestOneErrorShape(t *testing.T) {
	e := newEnv(t)
	e.socket()
	e.user("ada@example.com", control.RoleAdmin, "admin password")
	e.user("bob@example.com", control.RoleMember, "bob password")
	cookie := e.client().mustLogin("ada@example.com", "admin password")
	sec := e.bearer
	var created api.CreatedAPIToken
	cookie.do("POST", "/api/v1/api-tokens", map[string]any{"scopes": []string{"read", "policy", "users"}}).want(t, http.StatusCreated, "").decode(t, &created)
	token := created.Secret

	type send func(method, path string, in any, hdr ...string) answer
	ways := map[string]send{
		"sign-in":      cookie.do,
		"admin socket": e.socketDo,
		"API token": func(method, path string, in any, hdr ...string) answer {
			return sec(token, method, path, in, hdr...)
		},
	}
	huge := map[string]string{"text": strings.Repeat("x", maxPolicyBody+1)}
	for how, do := range ways {
		wantErrorShape(t, how+" unknown route", do("GET", "/api/v1/nowhere", nil), http.StatusNotFound, api.CodeNotFound)
		a := do("PATCH", "/api/v1/policy", nil)
		wantErrorShape(t, how+" wrong method", a, http.StatusMethodNotAllowed, api.CodeMethodNotAllowed)
		if allow := a.header.Get("Allow"); allow != "GET, PUT" {
			t.Errorf("%s: 405 Allow %q, want GET, PUT", how, allow)
		}
		wantErrorShape(t, how+" bad JSON", do("POST", "/api/v1/users", map[string]any{"email": 7}), http.StatusBadRequest, api.CodeBadRequest)
		wantErrorShape(t, how+" no such user", do("DELETE", "/api/v1/users/nobody@example.com", nil), http.StatusNotFound, api.CodeNotFound)
		wantErrorShape(t, how+" exists", do("POST", "/api/v1/users", map[string]any{"email": "bob@example.com"}), http.StatusConflict, api.CodeExists)
		wantErrorShape(t, how+" no If-Match", do("PUT", "/api/v1/policy", map[string]string{"text": "{}"}), http.StatusPreconditionRequired, api.CodeIfMatchRequired)
		wantErrorShape(t, how+" stale", do("PUT", "/api/v1/policy", map[string]string{"text": "{}"}, "If-Match", `"99"`), http.StatusPreconditionFailed, api.CodeStaleVersion)
		wantErrorShape(t, how+" too large", do("PUT", "/api/v1/policy", huge, "If-Match", "*"), http.StatusRequestEntityTooLarge, api.CodeTooLarge)
	}
	// bad_policy adds its problems (and nothing else).
	a := e.socketDo("POST", "/api/v1/policy/validate", map[string]string{"text": `{"acls": [{"action": "allow"}]}`})
	var bad api.Error
	a.want(t, http.StatusBadRequest, api.CodeBadPolicy).decode(t, &bad)
	if len(bad.Problems) == 0 {
		t.Errorf("bad_policy without problems: %s", a.raw)
	}

	// Refusals of one way in only.
	wantErrorShape(t, "no sign-in", e.client().do("GET", "/api/v1/me", nil), http.StatusUnauthorized, api.CodeUnauthenticated)
	wantErrorShape(t, "member", e.client().mustLogin("bob@example.com", "bob password").do("GET", "/api/v1/users", nil), http.StatusForbidden, api.CodeForbidden)
	noCSRF := e.client().mustLogin("ada@example.com", "admin password")
	noCSRF.csrf = ""
	wantErrorShape(t, "no CSRF token", noCSRF.do("POST", "/api/v1/users", map[string]any{"email": "x@example.com"}), http.StatusForbidden, api.CodeCSRF)
	wantErrorShape(t, "bad token", sec("tsapi-nope", "GET", "/api/v1/me", nil), http.StatusUnauthorized, api.CodeUnauthenticated)
	wantErrorShape(t, "token scope", sec(token, "DELETE", "/api/v1/nodes/1", nil), http.StatusForbidden, api.CodeInsufficientScope)
	wantErrorShape(t, "socket, not a user", e.socketDo("GET", "/api/v1/nodes/1/ssh-users", nil), http.StatusBadRequest, api.CodeBadRequest)
	wantErrorShape(t, "socket, outside the API", e.socketDo("GET", "/admin/", nil), http.StatusNotFound, api.CodeNotFound)
	for range maxFailuresPerAddr {
		sec("tsapi-nope", "GET", "/api/v1/me", nil)
	}
	wantErrorShape(t, "bad tokens, rate limited", sec("tsapi-nope", "GET", "/api/v1/me", nil), http.StatusTooManyRequests, api.CodeRateLimited)
}
