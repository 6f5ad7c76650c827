package oidc

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"tsconnect/internal/safetext"
)

// A sign-in keeps no state on the server: its nonce, PKCE verifier, return path, start
// time and options travel in a cookie of the browser that started it, sealed with
// AES-256-GCM under a key of the server's (SetStateKey; the name of the cookie, derived
// from the random state sent to the provider, is the additional data). The cookie is
// HttpOnly, lives FlowTimeout, and is cleared by Finish; a callback works only in the
// browser that started it, and only with its own state. Anonymous starts cost the server
// nothing to keep, so no flood of them can block anyone else's sign-in. Replaying a
// callback fails at the provider, which redeems a code once.

// FlowTimeout is how long a started sign-in may take.
const FlowTimeout = 10 * time.Minute

// maxReturnTo bounds the return path kept in the cookie.
const maxReturnTo = 1024

// ReauthSkew is how far before the start of a re-authentication the provider's auth_time
// may lie (clock differences between the provider and this server).
const ReauthSkew = 2 * time.Minute

// flowState is what a sign-in's cookie carries (sealed).
type flowState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	ReturnTo string `json:"r"`
	Started  int64  `json:"t"` // Unix seconds
	Reauth   bool   `json:"a,omitempty"`
}

// StartOptions change how a sign-in starts. A nil *StartOptions means the defaults.
type StartOptions struct {
	// Reauthenticate asks the provider to authenticate the user afresh, even if it holds a
	// session for them (prompt=login, max_age=0), and has Finish refuse an ID token whose
	// auth_time is missing or older than the start (less ReauthSkew). Check mode uses it.
	Reauthenticate bool
}

// Start sends the browser to the provider to sign in; Finish at RedirectURL completes it.
// returnTo is where the caller wants to go afterwards; only a path on this server is kept
// (anything else becomes "/"). On failure Start answers 503 with a plain-text reason.
func (rp *RP) Start(w http.ResponseWriter, r *http.Request, returnTo string) {
	rp.StartWith(w, r, returnTo, nil)
}

// StartWith is Start with options.
func (rp *RP) StartWith(w http.ResponseWriter, r *http.Request, returnTo string, opts *StartOptions) {
	u, err := rp.AuthURL(w, r, returnTo, opts)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	http.Redirect(w, r, u, http.StatusFound)
}

// AuthURL is StartWith for callers that send the browser themselves (a JSON API): it
// records the sign-in, sets its cookie on w, and returns the provider's authorization URL.
func (rp *RP) AuthURL(w http.ResponseWriter, r *http.Request, returnTo string, opts *StartOptions) (string, error) {
	if opts == nil {
		opts = &StartOptions{}
	}
	ret := safeReturn(returnTo)
	if len(ret) > maxReturnTo {
		ret = "/"
	}
	p := flowState{State: rand.Text(), Nonce: rand.Text(), Verifier: oauth2.GenerateVerifier(),
		ReturnTo: ret, Started: time.Now().Unix(), Reauth: opts.Reauthenticate}
	name := rp.cookieName(p.State)
	sealed, err := rp.seal(name, p)
	if err != nil {
		return "", err
	}
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: sealed, Path: "/", MaxAge: int(FlowTimeout / time.Second),
		HttpOnly: true, Secure: rp.cookie.secure, SameSite: http.SameSiteLaxMode,
	})
	w.Header().Set("Cache-Control", "no-store")
	params := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(p.Verifier), oidc.Nonce(p.Nonce)}
	if p.Reauth {
		params = append(params, oauth2.SetAuthURLParam("prompt", "login"), oauth2.SetAuthURLParam("max_age", "0"))
	}
	return rp.oauth.AuthCodeURL(p.State, params...), nil
}

// cookieName is the cookie of the sign-in with this state: one cookie per sign-in, so
// sign-ins started in two tabs do not disturb each other.
func (rp *RP) cookieName(state string) string {
	h := sha256.Sum256([]byte(state))
	return rp.cookie.prefix + hex.EncodeToString(h[:8])
}

// Finish completes a sign-in at RedirectURL: it checks the state against this browser's
// cookie, redeems the code with the PKCE verifier, verifies the ID token (signature,
// issuer, audience, expiry, nonce), requires a verified email, and applies the allow lists.
// It returns the user and the returnTo given to Start. Errors wrap one of the Err values of
// this package and say what was wrong; they are fit to show the user. Refusals are logged
// (Config.Logf), except ErrState ones, which anyone can cause: their caller logs those as it sees fit.
func (rp *RP) Finish(w http.ResponseWriter, r *http.Request) (Identity, string, error) {
	id, returnTo, err := rp.finish(w, r)
	if err != nil {
		if !errors.Is(err, ErrState) { // anyone can forge those: the caller decides what to log
			rp.logf("%s", safetext.Bounded(err.Error(), 1024))
		}
		return Identity{}, "", err
	}
	rp.logf("oidc: %s (%s at %s) signed in", safetext.Escape(id.Email), safetext.Escape(id.Subject), id.Issuer)
	return id, returnTo, nil
}

func (rp *RP) finish(w http.ResponseWriter, r *http.Request) (Identity, string, error) {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		return Identity{}, "", fmt.Errorf("%w: the callback carries no state", ErrState)
	}
	if len(state) > 64 {
		return Identity{}, "", fmt.Errorf("%w: the callback's state is too long", ErrState)
	}
	name := rp.cookieName(state)
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: rp.cookie.secure, SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	c, err := r.Cookie(name)
	if err != nil {
		return Identity{}, "", fmt.Errorf("%w: the sign-in was not started in this browser, or was already used (no cookie for its state)", ErrState)
	}
	p, err := rp.open(name, c.Value)
	if err != nil || subtle.ConstantTimeCompare([]byte(p.State), []byte(state)) != 1 {
		return Identity{}, "", fmt.Errorf("%w: the sign-in cookie does not belong to this callback (forged, or from before a key change); start again", ErrState)
	}
	started := time.Unix(p.Started, 0)
	if time.Since(started) > FlowTimeout {
		return Identity{}, "", fmt.Errorf("%w: the sign-in took longer than %v; start again", ErrState, FlowTimeout)
	}
	if iss := q.Get("iss"); iss != "" && iss != rp.issuer { // RFC 9207 mix-up defence
		return Identity{}, "", fmt.Errorf("%w: the callback comes from issuer %q, not %q", ErrProvider, iss, rp.issuer)
	}
	if e := q.Get("error"); e != "" {
		return Identity{}, "", fmt.Errorf("%w: %s", ErrProvider, providerError(e, q.Get("error_description")))
	}
	code := q.Get("code")
	if code == "" {
		return Identity{}, "", fmt.Errorf("%w: the callback carries no code", ErrProvider)
	}

	ctx := rp.clientContext(r.Context())
	tok, err := rp.oauth.Exchange(ctx, code, oauth2.VerifierOption(p.Verifier))
	if err != nil {
		return Identity{}, "", fmt.Errorf("%w: %s", ErrExchange, exchangeError(err))
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, "", fmt.Errorf("%w: the token response has no id_token", ErrExchange)
	}
	idt, err := rp.verifier.Verify(ctx, raw)
	if err != nil {
		return Identity{}, "", classify(err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(p.Nonce)) != 1 {
		return Identity{}, "", fmt.Errorf("%w: the ID token's nonce is not the one this sign-in sent", ErrNonce)
	}
	id, err := rp.identity(ctx, idt, tok)
	if err != nil {
		return Identity{}, "", err
	}
	if p.Reauth && (id.AuthTime.IsZero() || id.AuthTime.Before(started.Add(-ReauthSkew))) {
		at := "missing"
		if !id.AuthTime.IsZero() {
			at = id.AuthTime.UTC().Format(time.RFC3339)
		}
		return Identity{}, "", fmt.Errorf("%w: %s was asked to sign in again at %s, but the provider's auth_time is %s",
			ErrStaleAuth, id.Email, started.UTC().Format(time.RFC3339), at)
	}
	id.Fresh = p.Reauth
	if err := rp.allowed(id); err != nil {
		return Identity{}, "", err
	}
	return id, p.ReturnTo, nil
}

// providerError is the provider's error code and description, shortened and printable.
func providerError(code, desc string) string {
	s := "the provider answered " + printable(code, 64)
	if desc != "" {
		s += ": " + printable(desc, 200)
	}
	return s
}

// exchangeError describes a failed code redemption without the response body's tokens.
func exchangeError(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode != "" {
		return "the token endpoint refused the code: " + providerError(re.ErrorCode, re.ErrorDescription)
	}
	if errors.As(err, &re) && re.Response != nil {
		return "the token endpoint answered " + re.Response.Status
	}
	return "redeeming the code failed: " + err.Error()
}

// printable keeps at most n printable ASCII characters of s.
func printable(s string, n int) string {
	out := make([]byte, 0, min(len(s), n))
	for i := 0; i < len(s) && len(out) < n; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			out = append(out, c)
		}
	}
	return string(out)
}
