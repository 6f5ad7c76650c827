package testop

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"tsconnect/internal/leakcheck"
)

const redirect = "http://127.0.0.1:1/callback" // never contacted: the browser stops before it

func newOP(t *testing.T) *OP {
	t.Helper()
	leakcheck.Check(t)
	op, err := New(Options{
		Users:   []User{{Email: "alice@example.com", Password: "correct horse", Name: "Alice", EmailVerified: true, Groups: []string{"eng", "ops"}}},
		Clients: []Client{{ID: "rp", Secret: "rp-secret", RedirectURIs: []string{redirect}}},
		Logf:    t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(op.Close)
	return op
}

// browser follows redirects except the one to the relying party's callback, which it returns.
func browser(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Jar: jar, Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), redirect) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

var actionRE = regexp.MustCompile(`<form method="post" action="([^"]*)"`)

// login opens authURL, fills in the form and returns the last response.
func login(t *testing.T, c *http.Client, authURL, email, password string) *http.Response {
	t.Helper()
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("authorize page: %s: %s", resp.Status, body)
	}
	m := actionRE.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no login form in %s", body)
	}
	action, err := resp.Request.URL.Parse(html.UnescapeString(string(m[1])))
	if err != nil {
		t.Fatal(err)
	}
	resp, err = c.PostForm(action.String(), url.Values{"email": {email}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func oauthConfig(op *OP, secret string) *oauth2.Config {
	return &oauth2.Config{ClientID: "rp", ClientSecret: secret, RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{AuthURL: op.Issuer() + "/authorize", TokenURL: op.Issuer() + "/token"},
		Scopes:   []string{"openid", "email", "groups"}}
}

// codeFor signs alice in and returns the authorization code.
func codeFor(t *testing.T, op *OP, verifier string) string {
	t.Helper()
	u := oauthConfig(op, "").AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("nonce", "nonce-0123456789"))
	resp := login(t, browser(t), u, "alice@example.com", "correct horse")
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode/100 != 3 || err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("after login: %s, Location %q", resp.Status, resp.Header.Get("Location"))
	}
	if loc.Query().Get("state") != "state-0123456789" {
		t.Fatalf("state came back as %q", loc.Query().Get("state"))
	}
	return loc.Query().Get("code")
}

func exchange(op *OP, secret, code, verifier string) (*oauth2.Token, error) {
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: tr})
	return oauthConfig(op, secret).Exchange(ctx, code, oauth2.VerifierOption(verifier))
}

func TestSignInIssuesSignedIDToken(t *testing.T) {
	op := newOP(t)
	v := oauth2.GenerateVerifier()
	tok, err := exchange(op, "rp-secret", codeFor(t, op, v), v)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("id_token %q: %v", raw, err)
	}
	resp, err := http.Get(op.Issuer() + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in JWKS %+v", jws.Signatures[0].Header.KeyID, set)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("signature: %v", err)
	}
	var c map[string]any
	json.Unmarshal(payload, &c)
	if c["iss"] != op.Issuer() || c["sub"] != "alice@example.com" || c["email"] != "alice@example.com" ||
		c["email_verified"] != true || c["nonce"] != "nonce-0123456789" || c["name"] != "Alice" {
		t.Errorf("claims %v", c)
	}
	if g, _ := json.Marshal(c["groups"]); string(g) != `["eng","ops"]` {
		t.Errorf("groups %s", g)
	}
	if aud, _ := json.Marshal(c["aud"]); string(aud) != `["rp"]` {
		t.Errorf("aud %s", aud)
	}
	if op.Logins() != 1 {
		t.Errorf("Logins() = %d", op.Logins())
	}
}

func TestWrongPasswordGetsNoCode(t *testing.T) {
	op := newOP(t)
	u := oauthConfig(op, "").AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	for _, pw := range []string{"wrong", ""} {
		resp := login(t, browser(t), u, "alice@example.com", pw)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Location") != "" ||
			!strings.Contains(string(body), "Wrong email or password") {
			t.Errorf("password %q: %s, Location %q", pw, resp.Status, resp.Header.Get("Location"))
		}
	}
	if op.Logins() != 0 {
		t.Errorf("Logins() = %d", op.Logins())
	}
}

func TestCodeIsOneTimeAndNeedsVerifierAndSecret(t *testing.T) {
	op := newOP(t)
	v := oauth2.GenerateVerifier()
	code := codeFor(t, op, v)
	if _, err := exchange(op, "rp-secret", code, oauth2.GenerateVerifier()); err == nil {
		t.Error("code redeemed with the wrong PKCE verifier")
	}
	code = codeFor(t, op, v)
	if _, err := exchange(op, "not-the-secret", code, v); err == nil {
		t.Error("code redeemed with the wrong client secret")
	}
	code = codeFor(t, op, v)
	if _, err := exchange(op, "rp-secret", code, v); err != nil {
		t.Fatal(err)
	}
	if _, err := exchange(op, "rp-secret", code, v); err == nil {
		t.Error("code redeemed twice")
	}
}

func TestAuthorizeRefusesWithoutPKCEOrUnknownRedirect(t *testing.T) {
	op := newOP(t)
	c := browser(t)
	noPKCE := oauthConfig(op, "").AuthCodeURL("state-0123456789")
	other := oauthConfig(op, "")
	other.RedirectURL = "http://127.0.0.1:2/evil"
	badRedirect := other.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	for name, u := range map[string]string{"no PKCE": noPKCE, "unregistered redirect": badRedirect} {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), "<form") {
			t.Errorf("%s: login form shown (%s)", name, resp.Status)
		}
	}
	// The discovery document names what the endpoints do.
	resp, err := http.Get(op.Issuer() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	json.NewDecoder(resp.Body).Decode(&meta)
	resp.Body.Close()
	if meta["issuer"] != op.Issuer() || meta["jwks_uri"] != op.Issuer()+"/jwks" {
		t.Errorf("discovery %v", meta)
	}
}
