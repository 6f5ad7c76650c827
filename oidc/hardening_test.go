package oidc

import (
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"

	"tsconnect/internal/leakcheck"
	"tsconnect/internal/testopproc"
)

// setupWith is setup with provider options.
func setupWith(t *testing.T, c Config, opts testopproc.Options) (*app, *testopproc.OP) {
	t.Helper()
	leakcheck.Check(t)
	a := newApp(t)
	op := newProvider(t, a, opts)
	c.Issuer = op.Issuer()
	a.configure(t, c)
	return a, op
}

// TestAnonymousStartFloodDoesNotBlockSignIn: 30,000 anonymous starts (three times the old
// table of sign-ins in progress) leave nothing behind on the server, and a real user
// signs in right after.
func TestAnonymousStartFloodDoesNotBlockSignIn(t *testing.T) {
	a, _ := setup(t, Config{})
	for range 30000 {
		r, _ := http.NewRequest("GET", a.srv.URL+"/login?return=/", nil)
		w := &discardWriter{h: http.Header{}}
		a.rp.Start(w, r, "/")
		if w.status != http.StatusFound {
			t.Fatalf("start %d answered %d", w.status, w.status)
		}
	}
	b := newBrowser(t, a)
	if id, ret, err := b.finish(a, b.signIn(a, "/after-flood", alice.Email, alice.Password)); err != nil || id.Email != alice.Email || ret != "/after-flood" {
		t.Fatalf("sign-in after the flood: %+v %q %v", id, ret, err)
	}
}

type discardWriter struct {
	h      http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(s int)           { d.status = s }

// TestForgedOrSwappedStateCookieRefused: a cookie sealed under another key, one edited by
// the browser, and one of another sign-in are all refused.
func TestForgedOrSwappedStateCookieRefused(t *testing.T) {
	a, _ := setup(t, Config{})
	b := newBrowser(t, a)
	cb := b.signIn(a, "/", alice.Email, alice.Password)
	u, _ := url.Parse(cb)
	var name, value string
	for _, c := range b.c.Jar.Cookies(u) {
		if strings.HasPrefix(c.Name, "tsconnect_oidc_") {
			name, value = c.Name, c.Value
		}
	}
	if name == "" || strings.Contains(value, alice.Email) {
		t.Fatalf("state cookie %q=%q: want one, sealed", name, value)
	}
	set := func(v string) {
		jar, _ := cookiejar.New(nil)
		jar.SetCookies(u, []*http.Cookie{{Name: name, Value: v, Path: "/"}})
		b.c.Jar = jar
	}
	edited := []byte(value)
	edited[len(edited)/2] ^= 1
	set(string(edited))
	if _, _, err := b.finish(a, cb); !errors.Is(err, ErrState) {
		t.Fatalf("edited cookie: %v, want ErrState", err)
	}
	// The same cookie from an RP with another key (a restart without a stored key).
	if err := a.rp.SetStateKey([]byte(strings.Repeat("k", 32))); err != nil {
		t.Fatal(err)
	}
	set(value)
	if _, _, err := b.finish(a, cb); !errors.Is(err, ErrState) {
		t.Fatalf("cookie under another key: %v, want ErrState", err)
	}
	// With the same stored key, a sign-in survives a "restart" of the RP.
	b2 := newBrowser(t, a)
	cb2 := b2.signIn(a, "/kept", alice.Email, alice.Password)
	a.rp.SetStateKey([]byte(strings.Repeat("k", 32)))
	if _, ret, err := b2.finish(a, cb2); err != nil || ret != "/kept" {
		t.Fatalf("after setting the same key again: %q %v", ret, err)
	}
}

// TestClaimsOnlyInUserinfo: with a provider that keeps email, email_verified and the
// groups out of the ID token, the sign-in reads them from the userinfo endpoint.
func TestClaimsOnlyInUserinfo(t *testing.T) {
	a, _ := setupWith(t, Config{}, testopproc.Options{ClaimsInUserinfoOnly: true})
	b := newBrowser(t, a)
	id, _, err := b.finish(a, b.signIn(a, "/", alice.Email, alice.Password))
	if err != nil || id.Email != alice.Email || id.Name != alice.Name || !slices.Equal(id.Groups, alice.Groups) {
		t.Fatalf("sign-in with claims in userinfo only: %+v %v; want alice with her groups", id, err)
	}
	// Unverified stays unverified there too.
	b = newBrowser(t, a)
	if _, _, err := b.finish(a, b.signIn(a, "/", dave.Email, dave.Password)); !errors.Is(err, ErrEmailUnverified) {
		t.Fatalf("dave via userinfo: %v, want ErrEmailUnverified", err)
	}
}

// TestUserinfoOfAnotherSubjectRefused: a userinfo answer whose sub is not the ID token's
// (OpenID Connect Core 5.3.2) is refused, not merged.
func TestUserinfoOfAnotherSubjectRefused(t *testing.T) {
	a, _ := setupWith(t, Config{}, testopproc.Options{ClaimsInUserinfoOnly: true,
		UserinfoSubject: bob.Email})
	b := newBrowser(t, a)
	_, _, err := b.finish(a, b.signIn(a, "/", alice.Email, alice.Password))
	if !errors.Is(err, ErrUserinfo) || !strings.Contains(err.Error(), "subject") {
		t.Fatalf("userinfo for another subject: %v, want ErrUserinfo naming the subject", err)
	}
}

// TestNestedGroupsClaim: --oidc-groups-claim realm_access.roles reads a list nested in an
// object, in the ID token or in userinfo.
func TestNestedGroupsClaim(t *testing.T) {
	for _, inUserinfo := range []bool{false, true} {
		a, _ := setupWith(t, Config{GroupsClaim: "realm_access.roles", AllowedGroups: []string{"eng"}},
			testopproc.Options{GroupsClaim: "realm_access.roles", ClaimsInUserinfoOnly: inUserinfo})
		b := newBrowser(t, a)
		id, _, err := b.finish(a, b.signIn(a, "/", alice.Email, alice.Password))
		if err != nil || !slices.Equal(id.Groups, alice.Groups) {
			t.Fatalf("userinfo %v: nested groups %+v %v; want %v", inUserinfo, id, err, alice.Groups)
		}
		b = newBrowser(t, a)
		if _, _, err := b.finish(a, b.signIn(a, "/", bob.Email, bob.Password)); !errors.Is(err, ErrNotAllowed) {
			t.Fatalf("userinfo %v: bob (sales) with allowed group eng: %v, want ErrNotAllowed", inUserinfo, err)
		}
	}
}
