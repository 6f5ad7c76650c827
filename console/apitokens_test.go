package console

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"tsconnect/console/api"
	"tsconnect/control"
)

// TestAPITokensOverHTTP: an admin makes tokens on the socket and in the console; a token
// authenticates as its user within its scopes and role, needs no CSRF token, is shown once,
// survives a restart, and stops working when revoked or when its user is deleted.
func TestAPITokensOverHTTP(t *testing.T) {
	e := newEnv(t)
	sock := e.socket()
	ctx := context.Background()
	e.user("ada@example.com", control.RoleAdmin, "admin password")
	bob := e.user("bob@example.com", control.RoleMember, "bob password")
	e.setPolicy(`{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}`)

	// The local admin names the owner; a sign-in makes its own.
	_, _, err := sock.CreateAPIToken(ctx, api.CreateAPITokenRequest{Scopes: []string{"read"}})
	wantAPIError(t, err, http.StatusBadRequest, api.CodeBadRequest)
	secret, tok, err := sock.CreateAPIToken(ctx, api.CreateAPITokenRequest{User: "bob@example.com", Scopes: []string{"read", "keys"}, Description: "ci"})
	if err != nil || tok.Owner.ID != bob.ID || strings.Join(tok.Scopes, ",") != "keys,read" || tok.LastUsed != nil {
		t.Fatalf("create: %+v %v", tok, err)
	}
	_, _, err = sock.CreateAPIToken(ctx, api.CreateAPITokenRequest{User: "bob@example.com", Scopes: []string{"users"}})
	wantAPIError(t, err, http.StatusForbidden, api.CodeForbidden)

	// Who the token is, and what it may do: its scopes, within bob's role (a member).
	me := e.bearer(secret, "GET", "/api/v1/me", nil).want(t, http.StatusOK, "")
	var m api.Me
	me.decode(t, &m)
	if m.Via != "API token" || m.User.ID != bob.ID || m.CSRFToken != "" || strings.Join(m.Scopes, ",") != "keys,read" {
		t.Fatalf("me with a token: %s", me.raw)
	}
	e.bearer(secret, "GET", "/api/v1/nodes", nil).want(t, http.StatusOK, "")
	k := e.bearer(secret, "POST", "/api/v1/keys", map[string]any{"description": "from CI"}).want(t, http.StatusCreated, "")
	if !strings.HasPrefix(k.str("secret"), "tskey-") {
		t.Fatalf("key made with a token: %s", k.raw)
	}
	e.bearer(secret, "PUT", "/api/v1/policy", map[string]string{"text": "{}"}, "If-Match", "*").want(t, http.StatusForbidden, api.CodeInsufficientScope)
	e.bearer(secret, "DELETE", "/api/v1/nodes/1", nil).want(t, http.StatusForbidden, api.CodeInsufficientScope)
	e.bearer(secret, "GET", "/api/v1/users", nil).want(t, http.StatusForbidden, api.CodeForbidden) // read scope, member role
	e.bearer(secret, "POST", "/api/v1/api-tokens", map[string]any{"scopes": []string{"read"}}).want(t, http.StatusForbidden, api.CodeInsufficientScope)
	e.bearer(secret, "PUT", "/api/v1/me/password", map[string]string{"currentPassword": "bob password", "newPassword": "x"}).want(t, http.StatusForbidden, api.CodeInsufficientScope)

	// An admin's token with the policy scope writes the policy (If-Match as anyone).
	admin := e.client().mustLogin("ada@example.com", "admin password")
	a := admin.do("POST", "/api/v1/api-tokens", map[string]any{"scopes": []string{"read", "policy"}, "expiresIn": 3600}).want(t, http.StatusCreated, "")
	var created api.CreatedAPIToken
	a.decode(t, &created)
	pol := e.bearer(created.Secret, "GET", "/api/v1/policy", nil).want(t, http.StatusOK, "")
	put := e.bearer(created.Secret, "PUT", "/api/v1/policy", map[string]string{"text": `{"acls": []}`}, "If-Match", pol.header.Get("ETag")).want(t, http.StatusOK, "")
	if !strings.Contains(put.str("author"), "(API token "+strconv.FormatInt(created.Token.ID, 10)+")") {
		t.Errorf("policy author %q: want the token named", put.str("author"))
	}

	// Shown once: no list has a secret.
	for _, l := range []answer{admin.do("GET", "/api/v1/api-tokens", nil), e.socketDo("GET", "/api/v1/api-tokens", nil)} {
		l.want(t, http.StatusOK, "")
		if strings.Contains(string(l.raw), secret) || strings.Contains(string(l.raw), created.Secret) || !strings.Contains(string(l.raw), `"ci"`) {
			t.Fatalf("token list %s: want the tokens without their secrets", l.raw)
		}
	}
	// A member lists and revokes only their own.
	bobc := e.client().mustLogin("bob@example.com", "bob password")
	var bl api.APITokenList
	bobc.do("GET", "/api/v1/api-tokens", nil).want(t, http.StatusOK, "").decode(t, &bl)
	if len(bl.Tokens) != 1 || bl.Tokens[0].ID != tok.ID || bl.Tokens[0].LastUsed == nil {
		t.Fatalf("bob's tokens: %+v; want his one, used", bl.Tokens)
	}
	bobc.do("DELETE", "/api/v1/api-tokens/"+strconv.FormatInt(created.Token.ID, 10), nil).want(t, http.StatusNotFound, api.CodeNotFound)

	// A restart keeps it.
	e.restart()
	e.bearer(secret, "GET", "/api/v1/me", nil).want(t, http.StatusOK, "")

	// Revoked, it is refused; so is every token of a deleted user.
	sock2 := e.socket() // the env's restart closed the old console and its socket
	if err := sock2.RevokeAPIToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	e.bearer(secret, "GET", "/api/v1/me", nil).want(t, http.StatusUnauthorized, api.CodeUnauthenticated)
	s2, _, err := sock2.CreateAPIToken(ctx, api.CreateAPITokenRequest{User: api.UserName(strconv.FormatInt(bob.ID, 10)), Scopes: []string{"read"}})
	if err != nil {
		t.Fatal(err)
	}
	e.bearer(s2, "GET", "/api/v1/nodes", nil).want(t, http.StatusOK, "")
	if _, err := sock2.DeleteUser(ctx, "bob@example.com"); err != nil {
		t.Fatal(err)
	}
	e.bearer(s2, "GET", "/api/v1/nodes", nil).want(t, http.StatusUnauthorized, api.CodeUnauthenticated)
}

// TestAPITokenRefusals: a malformed or unknown token is 401 without a lookup; failures from
// one address are rate limited like failed logins.
func TestAPITokenRefusals(t *testing.T) {
	e := newEnv(t)
	c := &client{e: e, hc: &http.Client{}}
	c.do("GET", "/api/v1/me", nil, "Authorization", "Basic YWRhOnB3").want(t, http.StatusUnauthorized, api.CodeUnauthenticated)
	if a := e.bearer("tsapi-short", "GET", "/api/v1/me", nil).want(t, http.StatusUnauthorized, api.CodeUnauthenticated); !strings.Contains(a.str("error"), "not an API token") {
		t.Errorf("short token: %s", a.raw)
	}
	unknown := control.APITokenPrefix + strings.Repeat("Q", control.APITokenLen-len(control.APITokenPrefix))
	for i := 1; i < maxFailuresPerAddr; i++ { // the short one counted too
		e.bearer(unknown, "GET", "/api/v1/nodes", nil).want(t, http.StatusUnauthorized, api.CodeUnauthenticated)
	}
	a := e.bearer(unknown, "GET", "/api/v1/nodes", nil).want(t, http.StatusTooManyRequests, api.CodeRateLimited)
	if a.header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After: %v", a.header)
	}
}
