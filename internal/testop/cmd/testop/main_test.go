package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

const goodConfig = `{"users": [{"email": "erin@example.com", "password": "pw", "email_verified": true, "groups": ["engineering"]}],
 "client": {"id": "tsconnect", "secret": "s3cret", "redirect_uri": "http://127.0.0.1:9/auth/oidc/callback"}}`

func TestServesDiscoveryAndPrintsIssuer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--config", "-", "-v=false"}, strings.NewReader(goodConfig), pw)
		pw.Close()
	}()
	out := bufio.NewReader(pr)
	issuer, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("reading the issuer line: %v (run: %v)", err, <-done)
	}
	issuer = strings.TrimSpace(issuer)
	if !strings.HasPrefix(issuer, "http://127.0.0.1:") {
		t.Fatalf("issuer line %q, want http://127.0.0.1:PORT", issuer)
	}
	adminLine, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("reading the admin line: %v (run: %v)", err, <-done)
	}
	if f := strings.Fields(adminLine); len(f) != 3 || f[0] != "admin" || !strings.HasPrefix(f[1], "http://127.0.0.1:") {
		t.Fatalf("admin line %q, want \"admin http://127.0.0.1:PORT TOKEN\"", adminLine)
	}
	r, err := http.Get(issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Issuer string `json:"issuer"`
	}
	err = json.NewDecoder(r.Body).Decode(&d)
	r.Body.Close()
	if err != nil || d.Issuer != issuer {
		t.Fatalf("discovery names issuer %q (%v), want %q", d.Issuer, err, issuer)
	}
	// The client and user were registered: the authorize endpoint shows the login form.
	q := "/authorize?response_type=code&client_id=tsconnect&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fauth%2Foidc%2Fcallback" +
		"&scope=openid+email&state=abcdefghijkl&nonce=abcdefghijkl&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
	r, err = http.Get(issuer + q)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusOK || !strings.Contains(string(body), `name="password"`) {
		t.Fatalf("authorize: %s\n%s", r.Status, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
	if _, err := http.Get(issuer + "/jwks"); err == nil {
		t.Fatal("the provider still serves after run returned")
	}
}

func TestConfigErrorsNameTheProblem(t *testing.T) {
	for _, tc := range []struct{ name, config, want string }{
		{"unknown field", `{"users": [], "client": {"id": "c", "secret": "s", "redirect_uri": "http://x/cb"}, "extra": 1}`, `unknown field "extra"`},
		{"no client", `{"users": [{"email": "a@b.c", "password": "p"}]}`, "no client"},
		{"user without password", `{"users": [{"email": "a@b.c"}], "client": {"id": "c", "secret": "s", "redirect_uri": "http://x/cb"}}`, "user 1 needs an email and a password"},
		{"client without secret", `{"client": {"id": "c", "redirect_uri": "http://x/cb"}}`, "needs an ID, a secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(context.Background(), []string{"--config", "-"}, strings.NewReader(tc.config), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if err := run(context.Background(), nil, strings.NewReader(""), io.Discard); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Fatalf("run without --config = %v", err)
	}
}

// startRun runs testop with args and config and returns its issuer and its admin URL and
// token; it stops when t ends.
func startRun(t *testing.T, config string, args ...string) (issuer, admin, token string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"--config", "-", "-v=false"}, args...), strings.NewReader(config), pw)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	out := bufio.NewReader(pr)
	var lines []string
	for range 2 {
		l, err := out.ReadString('\n')
		if err != nil {
			t.Fatalf("reading testop's output: %v", err)
		}
		lines = append(lines, strings.TrimSpace(l))
	}
	go io.Copy(io.Discard, out) // nothing more is printed; drain until run ends
	f := strings.Fields(lines[1])
	if len(f) != 3 {
		t.Fatalf("admin line %q", lines[1])
	}
	return lines[0], f[1], f[2]
}

// adminCall sends one admin request and returns the status and body.
func adminCall(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAdminEndpoint: with the printed token, a user added at run time can sign in (the login
// counter counts it) and a remembered sign-in can be backdated; without it, or with a body
// that names an unknown field or no password, the endpoint refuses and says why.
func TestAdminEndpoint(t *testing.T) {
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	issuer, admin, token := startRun(t, goodConfig, "--remember-sign-ins")
	for _, tc := range []struct {
		method, path, token, body string
		status                    int
		want                      string
	}{
		{"GET", "/logins", "", "", http.StatusUnauthorized, "bearer token"},
		{"GET", "/logins", "not-the-token", "", http.StatusUnauthorized, "bearer token"},
		{"POST", "/users", token, `{"email": "x@example.com"}`, http.StatusBadRequest, "needs an email and a password"},
		{"POST", "/users", token, `{"email": "x@example.com", "password": "p", "admin": true}`, http.StatusBadRequest, `unknown field "admin"`},
		{"POST", "/clients", token, `{"id": "other"}`, http.StatusBadRequest, "needs an ID, a secret"},
		{"POST", "/backdate", token, `{"by": "yesterday"}`, http.StatusBadRequest, `not "yesterday"`},
		{"GET", "/logins", token, "", http.StatusOK, `{"logins":0}`},
		{"POST", "/users", token, `{"email": "fred@example.com", "password": "fred-pw", "email_verified": true}`, http.StatusNoContent, ""},
		{"POST", "/clients", token, `{"id": "other", "secret": "s", "redirect_uri": "http://127.0.0.1:9/other"}`, http.StatusNoContent, ""},
		{"POST", "/backdate", token, `{"by": "2h"}`, http.StatusNoContent, ""},
	} {
		status, body := adminCall(t, tc.method, admin+tc.path, tc.token, tc.body)
		if status != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s %s %s: %d %q, want %d containing %q", tc.method, tc.path, tc.body, status, body, tc.status, tc.want)
		}
	}
	// fred, added at run time, signs in for the client added at run time.
	q := "/authorize?response_type=code&client_id=other&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fother" +
		"&scope=openid+email&state=abcdefghijkl&nonce=abcdefghijkl&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(issuer+q, map[string][]string{"email": {"fred@example.com"}, "password": {"fred-pw"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "http://127.0.0.1:9/other?code=") {
		t.Fatalf("fred's sign-in: %s, Location %q", resp.Status, loc)
	}
	if status, body := adminCall(t, "GET", admin+"/logins", token, ""); status != http.StatusOK || strings.TrimSpace(body) != `{"logins":1}` {
		t.Fatalf("logins after fred's sign-in: %d %s", status, body)
	}
}
