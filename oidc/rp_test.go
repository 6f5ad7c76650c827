package oidc

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"tsconnect/internal/leakcheck"
	"tsconnect/internal/testopproc"
)

func TestSignInGivesIdentityWithGroups(t *testing.T) {
	a, op := setup(t, Config{})
	if got := a.rp.Scopes(); !reflect.DeepEqual(got, []string{"openid", "email", "profile", "groups"}) {
		t.Errorf("scopes %v (the provider lists groups, so it is asked for)", got)
	}
	b := newBrowser(t, a)
	id, ret, err := b.finish(a, b.signIn(a, "/admin/machines?x=1", alice.Email, alice.Password))
	if err != nil {
		t.Fatal(err)
	}
	if id.AuthTime.IsZero() {
		t.Error("no auth_time")
	}
	id.AuthTime = time.Time{}
	want := Identity{Issuer: op.Issuer(), Subject: alice.Email, Email: alice.Email, Name: alice.Name, Groups: []string{"eng", "admins"}}
	if !reflect.DeepEqual(id, want) {
		t.Errorf("identity %+v, want %+v", id, want)
	}
	if ret != "/admin/machines?x=1" {
		t.Errorf("returnTo %q", ret)
	}
	if op.Logins() != 1 {
		t.Errorf("provider saw %d logins", op.Logins())
	}
	// The per-sign-in cookie is gone once used.
	u, _ := url.Parse(a.srv.URL + "/callback")
	if cs := b.c.Jar.Cookies(u); len(cs) != 0 {
		t.Errorf("cookies left after sign-in: %v", cs)
	}
}

func TestGroupsFromConfiguredClaim(t *testing.T) {
	leakcheck.Check(t)
	a := newApp(t)
	op := newProvider(t, a, testopproc.Options{GroupsClaim: "roles"})
	a.configure(t, Config{Issuer: op.Issuer(), GroupsClaim: "roles", AllowedGroups: []string{"admins"}})
	b := newBrowser(t, a)
	id, _, err := b.finish(a, b.signIn(a, "", alice.Email, alice.Password))
	if err != nil || !reflect.DeepEqual(id.Groups, []string{"eng", "admins"}) {
		t.Fatalf("groups %v, err %v", id.Groups, err)
	}
}

func TestUnsafeReturnToBecomesRoot(t *testing.T) {
	a, _ := setup(t, Config{})
	for _, ret := range []string{"https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)", ""} {
		b := newBrowser(t, a)
		_, got, err := b.finish(a, b.signIn(a, ret, bob.Email, bob.Password))
		if err != nil || got != "/" {
			t.Errorf("returnTo %q came back as %q (err %v), want /", ret, got, err)
		}
	}
}

func TestStateMismatchRefused(t *testing.T) {
	a, _ := setup(t, Config{})
	b := newBrowser(t, a)
	cb, _ := url.Parse(b.signIn(a, "/", alice.Email, alice.Password))
	q := cb.Query()
	q.Set("state", q.Get("state")+"x")
	cb.RawQuery = q.Encode()
	if _, _, err := b.finish(a, cb.String()); !errors.Is(err, ErrState) {
		t.Fatalf("tampered state: %v, want ErrState", err)
	}
	q.Del("state")
	cb.RawQuery = q.Encode()
	if _, _, err := b.finish(a, cb.String()); !errors.Is(err, ErrState) {
		t.Fatalf("no state: %v, want ErrState", err)
	}
}

func TestReplayedCallbackRefused(t *testing.T) {
	a, _ := setup(t, Config{})
	b := newBrowser(t, a)
	cb := b.signIn(a, "/", alice.Email, alice.Password)
	if _, _, err := b.finish(a, cb); err != nil {
		t.Fatal(err)
	}
	_, _, err := b.finish(a, cb)
	if !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("replayed callback: %v, want ErrState naming reuse", err)
	}
}

func TestCallbackInAnotherBrowserRefused(t *testing.T) {
	a, _ := setup(t, Config{})
	victim, attacker := newBrowser(t, a), newBrowser(t, a)
	// The attacker signs in and gets the victim's browser to open the callback (login CSRF).
	cb := attacker.signIn(a, "/", bob.Email, bob.Password)
	_, _, err := victim.finish(a, cb)
	if !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "not started in this browser") {
		t.Fatalf("callback in another browser: %v, want ErrState", err)
	}
}

func TestTwoTabsSignInIndependently(t *testing.T) {
	a, _ := setup(t, Config{})
	b := newBrowser(t, a)
	first := b.signIn(a, "/one", alice.Email, alice.Password)
	second := b.signIn(a, "/two", alice.Email, alice.Password)
	if _, ret, err := b.finish(a, second); err != nil || ret != "/two" {
		t.Fatalf("second tab: %q, %v", ret, err)
	}
	if _, ret, err := b.finish(a, first); err != nil || ret != "/one" {
		t.Fatalf("first tab: %q, %v", ret, err)
	}
}

func TestUnverifiedEmailRefused(t *testing.T) {
	a, _ := setup(t, Config{})
	b := newBrowser(t, a)
	_, _, err := b.finish(a, b.signIn(a, "/", dave.Email, dave.Password))
	if !errors.Is(err, ErrEmailUnverified) || !strings.Contains(err.Error(), dave.Email) {
		t.Fatalf("unverified email: %v", err)
	}
}

func TestAllowLists(t *testing.T) {
	cases := []struct {
		name    string
		c       Config
		user    testopproc.User
		allowed bool
		says    string
	}{
		{"no lists", Config{}, carol, true, ""},
		{"domain listed", Config{AllowedDomains: []string{"example.com"}}, bob, true, ""},
		{"domain with @ and case", Config{AllowedDomains: []string{"@Example.COM"}}, bob, true, ""},
		{"domain not listed", Config{AllowedDomains: []string{"example.com"}}, carol, false, `email domain "other.org" is not allowed`},
		{"group listed", Config{AllowedGroups: []string{"eng"}}, carol, true, ""},
		{"group not held", Config{AllowedGroups: []string{"eng"}}, bob, false, "in none of the allowed groups"},
		{"domain and group: both needed", Config{AllowedDomains: []string{"example.com"}, AllowedGroups: []string{"eng"}}, carol, false, "other.org"},
		{"domain and group: both held", Config{AllowedDomains: []string{"example.com"}, AllowedGroups: []string{"eng"}}, alice, true, ""},
		{"user listed overrides", Config{AllowedDomains: []string{"example.com"}, AllowedUsers: []string{"Carol@Other.org"}}, carol, true, ""},
		{"only users, not listed", Config{AllowedUsers: []string{"alice@example.com"}}, bob, false, "not among the allowed users"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := setup(t, tc.c)
			b := newBrowser(t, a)
			id, _, err := b.finish(a, b.signIn(a, "/", tc.user.Email, tc.user.Password))
			switch {
			case tc.allowed && (err != nil || id.Email != tc.user.Email):
				t.Fatalf("%s refused: %v", tc.user.Email, err)
			case !tc.allowed && (!errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), tc.says)):
				t.Fatalf("%s: %v, want ErrNotAllowed saying %q", tc.user.Email, err, tc.says)
			}
		})
	}
}

// TestForgedTokensRefused runs the whole flow against a provider that returns crafted ID
// tokens: each defect is refused with the error that names it; the unaltered token passes.
func TestForgedTokensRefused(t *testing.T) {
	leakcheck.Check(t)
	other := newKey(t)
	cases := []struct {
		name  string
		craft func(t *testing.T, f *forger, nonce string) string
		want  error
	}{
		{"valid", func(t *testing.T, f *forger, n string) string {
			return sign(t, jose.RS256, f.key, "k1", f.claims(n))
		}, nil},
		{"wrong audience", func(t *testing.T, f *forger, n string) string {
			c := f.claims(n)
			c["aud"] = "some-other-app"
			return sign(t, jose.RS256, f.key, "k1", c)
		}, ErrWrongAudience},
		{"bad signature", func(t *testing.T, f *forger, n string) string {
			return sign(t, jose.RS256, other, "k1", f.claims(n))
		}, ErrBadSignature},
		{"unknown key", func(t *testing.T, f *forger, n string) string {
			return sign(t, jose.RS256, other, "k2", f.claims(n))
		}, ErrBadSignature},
		{"HMAC with the public key", func(t *testing.T, f *forger, n string) string {
			return sign(t, jose.HS256, f.key.PublicKey.N.Bytes(), "k1", f.claims(n))
		}, ErrInvalidToken},
		{"expired", func(t *testing.T, f *forger, n string) string {
			c := f.claims(n)
			c["iat"], c["exp"] = time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
			return sign(t, jose.RS256, f.key, "k1", c)
		}, ErrTokenExpired},
		{"other issuer", func(t *testing.T, f *forger, n string) string {
			c := f.claims(n)
			c["iss"] = "https://accounts.example.net"
			return sign(t, jose.RS256, f.key, "k1", c)
		}, ErrWrongIssuer},
		{"wrong nonce", func(t *testing.T, f *forger, n string) string {
			return sign(t, jose.RS256, f.key, "k1", f.claims("a-nonce-from-another-sign-in"))
		}, ErrNonce},
		{"no nonce", func(t *testing.T, f *forger, n string) string {
			c := f.claims(n)
			delete(c, "nonce")
			return sign(t, jose.RS256, f.key, "k1", c)
		}, ErrNonce},
		{"email_verified false", func(t *testing.T, f *forger, n string) string {
			c := f.claims(n)
			c["email_verified"] = false
			return sign(t, jose.RS256, f.key, "k1", c)
		}, ErrEmailUnverified},
		{"email_verified missing", func(t *testing.T, f *forger, n string) string {
			c := f.claims(n)
			delete(c, "email_verified")
			return sign(t, jose.RS256, f.key, "k1", c)
		}, ErrEmailUnverified},
		{"no email", func(t *testing.T, f *forger, n string) string {
			c := f.claims(n)
			delete(c, "email")
			return sign(t, jose.RS256, f.key, "k1", c)
		}, ErrNoEmail},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newForger(t)
			f.mu.Lock()
			f.craft = func(f *forger, nonce string) string { return tc.craft(t, f, nonce) }
			f.mu.Unlock()
			a := newApp(t)
			a.configure(t, Config{Issuer: f.srv.URL})
			b := newBrowser(t, a)
			resp, body := b.get(a.srv.URL + "/login")
			if resp.StatusCode/100 != 3 {
				t.Fatalf("forger did not send the browser back: %s %s", resp.Status, body)
			}
			id, _, err := b.finish(a, resp.Header.Get("Location"))
			if tc.want == nil {
				if err != nil || id.Email != "erin@example.com" || !reflect.DeepEqual(id.Groups, []string{"eng"}) {
					t.Fatalf("valid forged-provider token refused: %+v %v", id, err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			t.Logf("refused: %v", err)
		})
	}
}

func TestReauthenticateAsksProviderAndChecksAuthTime(t *testing.T) {
	a, op := setup(t, Config{})
	b := newBrowser(t, a)
	cb := b.signInAt(a, "/reauth?return=/check/abc", alice.Email, alice.Password)
	if q := b.authorize.Query(); q.Get("prompt") != "login" || q.Get("max_age") != "0" || q.Get("code_challenge_method") != "S256" {
		t.Errorf("authorization request %v", q)
	}
	id, ret, err := b.finish(a, cb)
	if err != nil || ret != "/check/abc" || id.Email != alice.Email || id.AuthTime.IsZero() {
		t.Fatalf("%+v %q %v", id, ret, err)
	}
	if op.Logins() != 1 {
		t.Errorf("provider saw %d logins", op.Logins())
	}
}

func TestForgedStaleAuthRefused(t *testing.T) {
	leakcheck.Check(t)
	for name, authTime := range map[string]any{
		"fresh":   time.Now().Unix(),
		"old":     time.Now().Add(-time.Hour).Unix(),
		"missing": nil,
	} {
		t.Run(name, func(t *testing.T) {
			f := newForger(t)
			f.mu.Lock()
			f.craft = func(f *forger, nonce string) string {
				c := f.claims(nonce)
				if authTime != nil {
					c["auth_time"] = authTime
				}
				return sign(t, jose.RS256, f.key, "k1", c)
			}
			f.mu.Unlock()
			a := newApp(t)
			a.configure(t, Config{Issuer: f.srv.URL})
			b := newBrowser(t, a)
			resp, _ := b.get(a.srv.URL + "/reauth")
			_, _, err := b.finish(a, resp.Header.Get("Location"))
			if name == "fresh" {
				if err != nil {
					t.Fatal(err)
				}
			} else if !errors.Is(err, ErrStaleAuth) {
				t.Fatalf("%v, want ErrStaleAuth", err)
			}
		})
	}
}

func TestProviderErrorIsReported(t *testing.T) {
	a, _ := setup(t, Config{})
	b := newBrowser(t, a)
	cb, _ := url.Parse(b.signIn(a, "/", alice.Email, alice.Password))
	q := cb.Query()
	q.Del("code")
	q.Set("error", "access_denied")
	q.Set("error_description", "The user said no.")
	cb.RawQuery = q.Encode()
	_, _, err := b.finish(a, cb.String())
	if !errors.Is(err, ErrProvider) || !strings.Contains(err.Error(), "access_denied: The user said no.") {
		t.Fatalf("%v", err)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, c := range []Config{
		{ClientID: "x", RedirectURL: "http://127.0.0.1/cb"},
		{Issuer: "http://127.0.0.1:1", RedirectURL: "http://127.0.0.1/cb"},
		{Issuer: "http://127.0.0.1:1", ClientID: "x", RedirectURL: "/cb"},
	} {
		if _, err := New(t.Context(), c); err == nil {
			t.Errorf("New(%+v) succeeded", c)
		}
	}
}

func TestSafeReturn(t *testing.T) {
	for in, want := range map[string]string{
		"/": "/", "/admin/": "/admin/", "/check/abc?x=1#y": "/check/abc?x=1#y",
		"": "/", "admin": "/", "//evil": "/", "/\\evil": "/", "https://evil/": "/", "/a\r\nSet-Cookie: x": "/",
	} {
		if got := safeReturn(in); got != want {
			t.Errorf("safeReturn(%q) = %q, want %q", in, got, want)
		}
	}
}
