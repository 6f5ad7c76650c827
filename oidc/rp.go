// Package oidc signs users in to control with any OpenID Connect provider: discovery, PKCE,
// state and nonce, a verified email, and allowed domains, users and groups.
package oidc

import (
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Config says which provider to use and who may sign in.
//
// Who may sign in: with every list empty, anyone the provider vouches for (with a verified
// email). A user named in AllowedUsers may always sign in. Otherwise each non-empty list of
// AllowedDomains and AllowedGroups must admit the user: the email's domain is listed, and
// at least one of the user's groups is listed.
type Config struct {
	// Issuer is the provider's issuer URL; discovery reads Issuer+"/.well-known/openid-configuration".
	Issuer       string
	ClientID     string
	ClientSecret string
	// RedirectURL is this server's callback (absolute), where Finish runs. It must be registered
	// with the provider.
	RedirectURL string
	// Scopes requested; nil means openid, email and profile, plus groups when the provider
	// lists that scope. "openid" is always requested.
	Scopes []string
	// AllowedDomains are email domains ("example.com"), compared without case.
	AllowedDomains []string
	// AllowedUsers are emails, compared without case.
	AllowedUsers []string
	// AllowedGroups are group names as the provider sends them in GroupsClaim.
	AllowedGroups []string
	// GroupsClaim names the claim holding the user's groups (a list of strings, or one
	// string), in the ID token or else in the userinfo answer; a dotted path
	// ("realm_access.roles") names a claim nested in objects. "" means "groups".
	GroupsClaim string

	// HTTPClient, if non-nil, is used to talk to the provider; nil means http.DefaultClient.
	HTTPClient *http.Client
	// Logf, if non-nil, receives a line per sign-in and per refusal (never a token or code).
	Logf func(format string, args ...any)
}

// Identity is a signed-in user as the provider describes them.
type Identity struct {
	Issuer  string
	Subject string // the provider's stable id for the user
	Email   string // verified
	Name    string // may be ""
	Groups  []string
	// AuthTime is when the provider last authenticated the user (auth_time); zero if not sent.
	AuthTime time.Time
	// Fresh is true when the sign-in was started with StartOptions.Reauthenticate and the
	// provider's auth_time shows it authenticated the user afresh for it.
	Fresh bool
}

// RP is a relying party for one provider. It is safe for concurrent use.
type RP struct {
	cfg      Config
	issuer   string
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	client   *http.Client
	logf     func(string, ...any)
	cookie   cookieSpec
	// userinfoURL is the provider's userinfo endpoint ("" when it has none).
	userinfoURL string

	mu   sync.Mutex
	aead cipher.AEAD // seals the sign-in cookies (statecookie.go)
}

// New discovers the provider and returns a relying party for it. ctx bounds discovery only.
func New(ctx context.Context, c Config) (*RP, error) {
	if c.Issuer == "" || c.ClientID == "" || c.RedirectURL == "" {
		return nil, errors.New("oidc: Config needs Issuer, ClientID and RedirectURL")
	}
	ru, err := url.Parse(c.RedirectURL)
	if err != nil || (ru.Scheme != "https" && ru.Scheme != "http") || ru.Host == "" {
		return nil, fmt.Errorf("oidc: RedirectURL %q is not an absolute http(s) URL", c.RedirectURL)
	}
	if c.GroupsClaim == "" {
		c.GroupsClaim = "groups"
	}
	rp := &RP{cfg: c, client: c.HTTPClient, logf: c.Logf, aead: randomStateAEAD()}
	if rp.client == nil {
		rp.client = http.DefaultClient
	}
	if rp.logf == nil {
		rp.logf = func(string, ...any) {}
	}
	rp.cookie = newCookieSpec(ru)

	p, err := oidc.NewProvider(rp.clientContext(ctx), c.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc: discovery at %s failed: %w", c.Issuer, err)
	}
	var meta struct {
		Scopes          []string `json:"scopes_supported"`
		ChallengeMethod []string `json:"code_challenge_methods_supported"`
		Userinfo        string   `json:"userinfo_endpoint"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, fmt.Errorf("oidc: reading the provider metadata of %s: %w", c.Issuer, err)
	}
	if len(meta.ChallengeMethod) > 0 && !slices.Contains(meta.ChallengeMethod, "S256") {
		return nil, fmt.Errorf("oidc: provider %s does not support PKCE with S256 (it lists %v)", c.Issuer, meta.ChallengeMethod)
	}
	scopes := c.Scopes
	if scopes == nil {
		scopes = []string{oidc.ScopeOpenID, "email", "profile"}
		if slices.Contains(meta.Scopes, "groups") {
			scopes = append(scopes, "groups")
		}
	} else if !slices.Contains(scopes, oidc.ScopeOpenID) {
		scopes = append([]string{oidc.ScopeOpenID}, scopes...)
	}
	rp.issuer = c.Issuer
	rp.userinfoURL = meta.Userinfo
	rp.oauth = oauth2.Config{
		ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: c.RedirectURL,
		Endpoint: p.Endpoint(), Scopes: scopes,
	}
	// The key set lives as long as the RP; VerifierContext ignores ctx's cancellation.
	rp.verifier = p.VerifierContext(rp.clientContext(context.WithoutCancel(ctx)), &oidc.Config{ClientID: c.ClientID})
	return rp, nil
}

// clientContext makes go-oidc and x/oauth2 use the configured HTTP client.
func (rp *RP) clientContext(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, rp.client)
}

// Issuer is the provider's issuer URL.
func (rp *RP) Issuer() string { return rp.issuer }

// Scopes are the scopes requested at sign-in.
func (rp *RP) Scopes() []string { return slices.Clone(rp.oauth.Scopes) }

// cookieSpec says how the per-sign-in browser cookies are set.
type cookieSpec struct {
	prefix string
	secure bool
}

func newCookieSpec(redirect *url.URL) cookieSpec {
	if redirect.Scheme == "https" {
		// __Host- cookies cannot be set by a sibling domain nor scoped to another path.
		return cookieSpec{prefix: "__Host-tsconnect_oidc_", secure: true}
	}
	return cookieSpec{prefix: "tsconnect_oidc_"}
}

// safeReturn is returnTo if it is a path on this server, else "/".
func safeReturn(returnTo string) string {
	if returnTo == "" || returnTo[0] != '/' || strings.HasPrefix(returnTo, "//") || strings.ContainsAny(returnTo, "\\\r\n") {
		return "/"
	}
	if u, err := url.Parse(returnTo); err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return returnTo
}
