package oidc

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"tsconnect/internal/leakcheck"
	"tsconnect/internal/testopproc"
)

// Users of the test provider.
var (
	alice = testopproc.User{Email: "alice@example.com", Password: "alice-pw", Name: "Alice Liddell", EmailVerified: true, Groups: []string{"eng", "admins"}}
	bob   = testopproc.User{Email: "bob@example.com", Password: "bob-pw", EmailVerified: true, Groups: []string{"sales"}}
	carol = testopproc.User{Email: "carol@other.org", Password: "carol-pw", EmailVerified: true, Groups: []string{"eng"}}
	dave  = testopproc.User{Email: "dave@example.com", Password: "dave-pw", EmailVerified: false, Groups: []string{"eng"}}
)

// app is a relying party's web server: /login starts a sign-in, /callback finishes it.
type app struct {
	srv *httptest.Server
	rp  *RP

	mu       sync.Mutex
	id       Identity
	returnTo string
	err      error
}

// newApp starts the app's server; configure builds its RP once its callback URL is known.
func newApp(t *testing.T) *app {
	t.Helper()
	a := &app{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		a.rp.Start(w, r, r.URL.Query().Get("return"))
	})
	mux.HandleFunc("GET /reauth", func(w http.ResponseWriter, r *http.Request) {
		a.rp.StartWith(w, r, r.URL.Query().Get("return"), &StartOptions{Reauthenticate: true})
	})
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		id, ret, err := a.rp.Finish(w, r)
		a.mu.Lock()
		a.id, a.returnTo, a.err = id, ret, err
		a.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		json.NewEncoder(w).Encode(id)
	})
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	return a
}

func (a *app) callbackURL() string { return a.srv.URL + "/callback" }

// configure discovers issuer and builds the app's RP.
func (a *app) configure(t *testing.T, c Config) {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c.ClientID, c.ClientSecret, c.RedirectURL = "tsconnect", "tsconnect-secret", a.callbackURL()
	c.HTTPClient, c.Logf = &http.Client{Transport: tr}, t.Logf
	rp, err := New(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	a.rp = rp
}

// result is what the last callback gave.
func (a *app) result() (Identity, string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.id, a.returnTo, a.err
}

// newProvider starts a testop with the usual users and the app as its client.
func newProvider(t *testing.T, a *app, opts testopproc.Options) *testopproc.OP {
	t.Helper()
	opts.Users = append(opts.Users, alice, bob, carol, dave)
	opts.Clients = []testopproc.Client{{ID: "tsconnect", Secret: "tsconnect-secret", RedirectURIs: []string{a.callbackURL()}}}
	opts.Logf = t.Logf
	return testopproc.Start(t, opts)
}

// setup gives an app signed in through a fresh test provider, configured with c.
func setup(t *testing.T, c Config) (*app, *testopproc.OP) {
	t.Helper()
	leakcheck.Check(t)
	a := newApp(t)
	op := newProvider(t, a, testopproc.Options{})
	c.Issuer = op.Issuer()
	a.configure(t, c)
	return a, op
}

// browser is a user agent with its own cookie jar. It follows redirects, except that it
// stops before the app's callback so tests can hold, replay or swap it.
type browser struct {
	t *testing.T
	c *http.Client
	// authorize is the provider URL the last sign-in went to.
	authorize *url.URL
}

func newBrowser(t *testing.T, a *app) *browser {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	cb := a.callbackURL()
	return &browser{t: t, c: &http.Client{Jar: jar, Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), cb) {
				return http.ErrUseLastResponse
			}
			return nil
		}}}
}

var formAction = regexp.MustCompile(`<form method="post" action="([^"]*)"`)

// signIn goes to the app's /login, through the provider's form, and returns the callback
// URL the provider sent the browser to (not yet visited).
func (b *browser) signIn(a *app, returnTo, email, password string) string {
	b.t.Helper()
	return b.signInAt(a, "/login?return="+url.QueryEscape(returnTo), email, password)
}

// signInAt is signIn starting at the app's path (e.g. /reauth).
func (b *browser) signInAt(a *app, path, email, password string) string {
	b.t.Helper()
	resp, body := b.get(a.srv.URL + path)
	b.authorize = resp.Request.URL
	m := formAction.FindStringSubmatch(body)
	if resp.StatusCode != 200 || m == nil {
		b.t.Fatalf("expected the provider's login form, got %s: %s", resp.Status, body)
	}
	action, err := resp.Request.URL.Parse(html.UnescapeString(m[1]))
	if err != nil {
		b.t.Fatal(err)
	}
	resp, err = b.c.PostForm(action.String(), url.Values{"email": {email}, "password": {password}})
	if err != nil {
		b.t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode/100 != 3 || !strings.HasPrefix(loc, a.callbackURL()) {
		b.t.Fatalf("login form answered %s, Location %q", resp.Status, loc)
	}
	return loc
}

// get fetches u and returns the response (body read) and its body.
func (b *browser) get(u string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Get(u)
	if err != nil {
		b.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// finish visits the callback and returns what the app's Finish gave.
func (b *browser) finish(a *app, callback string) (Identity, string, error) {
	b.t.Helper()
	resp, body := b.get(callback)
	id, ret, err := a.result()
	if (err == nil) != (resp.StatusCode == 200) {
		b.t.Fatalf("callback answered %s (%s) but Finish gave %v", resp.Status, body, err)
	}
	return id, ret, err
}
