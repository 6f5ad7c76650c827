// Package testop is a real OpenID Provider for tests, built on ory/fosite and served on loopback:
// discovery, JWKS, an HTML login form, the code flow with PKCE, and users with email and groups.
//
// It is a Go module of its own, so that the product's go.mod never lists fosite: cmd/testop
// serves it as a process, which the main module's tests start through internal/testopproc.
package testop

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

// User is an account of the provider.
type User struct {
	// Subject is the stable "sub" claim; "" means the email.
	Subject       string
	Email         string
	Password      string
	Name          string
	EmailVerified bool
	// Groups go in the ID token under Options.GroupsClaim.
	Groups []string
}

// Client is a registered relying party (a confidential client with a secret).
type Client struct {
	ID, Secret   string
	RedirectURIs []string
}

// Options configures an OP. The zero value gives a provider with no users and no clients.
type Options struct {
	Users   []User
	Clients []Client
	// GroupsClaim names the ID token claim that carries a user's groups; "" means "groups".
	// A dotted path ("realm_access.roles") nests the list in objects, as some providers do.
	GroupsClaim string
	// ClaimsInUserinfoOnly leaves email, email_verified, name and the groups out of the ID
	// token: only the userinfo endpoint (GET /userinfo with the access token) has them, as
	// with many providers by default.
	ClaimsInUserinfoOnly bool
	// UserinfoSubject, if non-nil, gives the "sub" the userinfo endpoint answers for a
	// user (a hostile or broken provider); nil answers the user's own subject.
	UserinfoSubject func(u User) string
	// RememberSignIns keeps a provider session per browser (a cookie): later authorization
	// requests from it, unless they ask for a fresh login (prompt=login or max_age=0), get
	// a code without the form, with auth_time still that of the password sign-in — the
	// silent single sign-on of real providers.
	RememberSignIns bool
	// NoAuthTime leaves auth_time out of the ID token.
	NoAuthTime bool
	// IDTokenLifespan is how long ID tokens are valid; 0 means one hour.
	IDTokenLifespan time.Duration
	// Logf, if non-nil, receives one line per sign-in and per refused request (never secrets).
	Logf func(format string, args ...any)
}

// OP is a running OpenID Provider on a loopback httptest server.
type OP struct {
	srv      *httptest.Server
	provider fosite.OAuth2Provider
	store    *store
	key      *rsa.PrivateKey
	kid      string
	groups   string
	opts     Options
	logf     func(string, ...any)

	mu       sync.Mutex
	users    map[string]User // by lower-case email
	logins   int
	sessions map[string]ssoSession // the provider's own sign-in sessions, by cookie value
}

// ssoSession is a browser signed in at the provider: later authorization requests without
// prompt=login or max_age=0 get a code at once, with auth_time the time of that sign-in.
type ssoSession struct {
	email    string
	authTime time.Time
}

// New starts a provider on 127.0.0.1. Close it when done.
func New(opts Options) (*OP, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("testop: generating the signing key: %w", err)
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	op := &OP{
		key: key, kid: rand.Text()[:12], groups: opts.GroupsClaim, opts: opts,
		store: newStore(), users: map[string]User{}, logf: opts.Logf, sessions: map[string]ssoSession{},
	}
	if op.groups == "" {
		op.groups = "groups"
	}
	if op.logf == nil {
		op.logf = func(string, ...any) {}
	}
	for _, u := range opts.Users {
		op.AddUser(u)
	}
	for _, c := range opts.Clients {
		if err := op.AddClient(c); err != nil {
			return nil, err
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", op.discovery)
	mux.HandleFunc("GET /jwks", op.jwks)
	mux.HandleFunc("GET /authorize", op.authorize)
	mux.HandleFunc("POST /authorize", op.authorize)
	mux.HandleFunc("POST /token", op.token)
	mux.HandleFunc("GET /userinfo", op.userinfo)
	op.srv = httptest.NewUnstartedServer(mux)
	issuer := "http://" + op.srv.Listener.Addr().String()

	lifespan := opts.IDTokenLifespan
	if lifespan == 0 {
		lifespan = time.Hour
	}
	cfg := &fosite.Config{
		IDTokenIssuer:                  issuer,
		IDTokenLifespan:                lifespan,
		AccessTokenLifespan:            time.Hour,
		AuthorizeCodeLifespan:          5 * time.Minute,
		GlobalSecret:                   secret,
		EnforcePKCE:                    true,
		EnablePKCEPlainChallengeMethod: false,
		SendDebugMessagesToClients:     true,
		TokenURL:                       issuer + "/token",
	}
	getKey := func(context.Context) (any, error) { return op.key, nil }
	op.provider = compose.Compose(cfg, op.store, &compose.CommonStrategy{
		CoreStrategy:               compose.NewOAuth2HMACStrategy(cfg),
		OpenIDConnectTokenStrategy: compose.NewOpenIDConnectStrategy(getKey, cfg),
		Signer:                     &jwt.DefaultSigner{GetPrivateKey: getKey},
	},
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2PKCEFactory,
		compose.OpenIDConnectExplicitFactory,
		compose.OAuth2TokenIntrospectionFactory,
	)
	op.srv.Start()
	return op, nil
}

// Issuer is the provider's issuer URL (http://127.0.0.1:PORT), the base of discovery.
func (op *OP) Issuer() string { return op.srv.URL }

// Close stops the server.
func (op *OP) Close() { op.srv.Close() }

// AddUser adds or replaces (by email) an account.
func (op *OP) AddUser(u User) {
	if u.Subject == "" {
		u.Subject = u.Email
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	op.users[strings.ToLower(u.Email)] = u
}

// AddClient registers a relying party. Its redirect URIs must be exact.
func (op *OP) AddClient(c Client) error {
	if c.ID == "" || c.Secret == "" || len(c.RedirectURIs) == 0 {
		return errors.New("testop: a client needs an ID, a secret and at least one redirect URI")
	}
	return op.store.addClient(c)
}

// Logins is how many sign-ins the login form has accepted.
func (op *OP) Logins() int {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.logins
}

// checkPassword returns the user whose email and password these are.
func (op *OP) checkPassword(email, password string) (User, bool) {
	op.mu.Lock()
	defer op.mu.Unlock()
	u, ok := op.users[strings.ToLower(strings.TrimSpace(email))]
	if !ok || u.Password == "" || u.Password != password {
		return User{}, false
	}
	op.logins++
	return u, true
}

// claims are the user's profile claims (email, email_verified, name, groups).
func (op *OP) claims(u User) map[string]any {
	c := map[string]any{
		"email":          u.Email,
		"email_verified": u.EmailVerified,
	}
	if u.Name != "" {
		c["name"] = u.Name
	}
	if u.Groups != nil {
		// A dotted claim name nests: "realm_access.roles" → {"realm_access": {"roles": […]}}.
		path := strings.Split(op.groups, ".")
		m := c
		for _, k := range path[:len(path)-1] {
			next := map[string]any{}
			m[k] = next
			m = next
		}
		m[path[len(path)-1]] = append([]string{}, u.Groups...)
	}
	return c
}

// userBySubject returns the user with subject sub.
func (op *OP) userBySubject(sub string) (User, bool) {
	op.mu.Lock()
	defer op.mu.Unlock()
	for _, u := range op.users {
		if u.Subject == sub {
			return u, true
		}
	}
	return User{}, false
}

// session is the fosite session (and so the ID token's claims) for user u, who
// authenticated at authTime.
func (op *OP) session(u User, authTime time.Time) *openid.DefaultSession {
	// auth_time is in whole seconds; requested_at equal to it satisfies prompt=login.
	now := time.Now().UTC().Truncate(time.Second)
	extra := op.claims(u)
	if op.opts.ClaimsInUserinfoOnly {
		extra = map[string]any{}
	}
	claims := &jwt.IDTokenClaims{Subject: u.Subject, AuthTime: authTime.UTC().Truncate(time.Second), RequestedAt: now, Extra: extra}
	return &openid.DefaultSession{
		Claims:  claims,
		Headers: &jwt.Headers{Extra: map[string]any{"kid": op.kid}},
		Subject: u.Subject, Username: u.Email,
	}
}
