package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
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
	issuer, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the issuer line: %v (run: %v)", err, <-done)
	}
	issuer = strings.TrimSpace(issuer)
	if !strings.HasPrefix(issuer, "http://127.0.0.1:") {
		t.Fatalf("issuer line %q, want http://127.0.0.1:PORT", issuer)
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
