package e2e

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"tsconnect/internal/testopproc"
)

// ssoBrowser is a user agent with its own cookies that follows redirects, as a browser
// would, through the console and a provider.
type ssoBrowser struct {
	t *testing.T
	c *http.Client
}

func newSSOBrowser(t *testing.T) *ssoBrowser {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &ssoBrowser{t: t, c: &http.Client{Jar: jar, Transport: tr}}
}

func (b *ssoBrowser) get(u string) (int, string) {
	b.t.Helper()
	resp, err := b.c.Get(u)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

var opFormAction = regexp.MustCompile(`<form method="post" action="([^"]*)"`)

// signIn starts a single sign-on at start, fills in the provider's form and returns the
// status and page the console answers at its callback.
func (b *ssoBrowser) signIn(start, email, password string) (int, string) {
	b.t.Helper()
	resp, err := b.c.Get(start)
	if err != nil {
		b.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := opFormAction.FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		b.t.Fatalf("%s: want the provider's form, got %s: %s", start, resp.Status, body)
	}
	action, err := resp.Request.URL.Parse(html.UnescapeString(string(m[1])))
	if err != nil {
		b.t.Fatal(err)
	}
	resp, err = b.c.PostForm(action.String(), url.Values{"email": {email}, "password": {password}})
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ = io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestCLIControlSSO runs `tsconnect control` with its --oidc-* flags against a real OpenID
// Provider: the console offers single sign-on; alice signs in and is a member with a
// console session; an unverified email and a domain not allowed are refused.
func TestCLIControlSSO(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	base := "http://" + addr
	op := testopproc.Start(t, testopproc.Options{
		Users: []testopproc.User{
			{Email: "alice@example.com", Password: "alice-idp", EmailVerified: true, Groups: []string{"engineering"}},
			{Email: "mallory@example.com", Password: "mallory-idp", EmailVerified: false},
			{Email: "carol@other.org", Password: "carol-idp", EmailVerified: true},
		},
		Clients: []testopproc.Client{{ID: "tsconnect", Secret: "e2e-client-secret", RedirectURIs: []string{base + "/auth/oidc/callback"}}},
		Logf:    t.Logf,
	})
	defer op.Close()
	secretFile := filepath.Join(t.TempDir(), "oidc-secret")
	if err := os.WriteFile(secretFile, []byte("e2e-client-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctrl := startProc(t, "control", "--listen", addr, "--state", dir, "--oidc-issuer", op.Issuer(),
		"--oidc-client-id", "tsconnect", "--oidc-client-secret-file", secretFile, "--oidc-allowed-domains", "example.com")
	waitHTTP(t, base+"/")

	b := newSSOBrowser(t)
	_, body := b.get(base + "/api/v1/auth-methods")
	var methods struct {
		Password bool
		OIDC     *struct{ Issuer string }
	}
	if err := json.Unmarshal([]byte(body), &methods); err != nil || !methods.Password || methods.OIDC == nil || methods.OIDC.Issuer != op.Issuer() {
		t.Fatalf("auth-methods: %s (%v); want password and the provider", body, err)
	}

	status, page := b.signIn(base+"/auth/oidc/start?returnTo=/admin/", "alice@example.com", "alice-idp")
	if status != http.StatusOK || !strings.Contains(page, `<meta http-equiv="refresh" content="0;url=/admin/">`) {
		t.Fatalf("callback: %d %s; want the signed-in page moving on to /admin/", status, page)
	}
	status, body = b.get(base + "/api/v1/me")
	if status != http.StatusOK || !strings.Contains(body, `"email":"alice@example.com"`) || !strings.Contains(body, `"role":"member"`) {
		t.Fatalf("me after single sign-on: %d %s", status, body)
	}
	users := cli(t, "users", "list", "--state", dir)
	if !strings.Contains(users, "alice@example.com") {
		t.Fatalf("users after alice's first sign-in:\n%s", users)
	}

	for _, tc := range []struct{ email, password, want string }{
		{"mallory@example.com", "mallory-idp", "not verified"},
		{"carol@other.org", "carol-idp", "is not allowed"},
	} {
		status, page := newSSOBrowser(t).signIn(base+"/auth/oidc/start", tc.email, tc.password)
		if status != http.StatusForbidden || !strings.Contains(page, tc.want) {
			t.Errorf("%s: %d %s; want 403 saying %q", tc.email, status, page, tc.want)
		}
	}
	if t.Failed() {
		t.Logf("control output:\n%s", ctrl.out)
	}
}
