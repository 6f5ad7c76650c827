// Package console serves the admin console's pages and its JSON API: login sessions,
// CSRF/Origin checks, machines, access controls, keys, users.
package console

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"tsconnect/control"
	"tsconnect/internal/safetext"
	"tsconnect/oidc"
)

// APIPrefix is where the console's JSON API is served.
const APIPrefix = "/api/v1"

// ContentSecurityPolicy is sent with every console page and API answer. No inline
// scripts; wasm compiles ('wasm-unsafe-eval'); the wasm runs in a Worker (blob: allowed);
// xterm.js sets inline styles.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; " +
	"style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; " +
	"base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// Options configure a Console.
type Options struct {
	// ServerURL is the server's public base URL (http://host:port or https://host). Its
	// origin is the only one state-changing requests and the events WebSocket may come
	// from, and it is the controlURL handed to SSH sessions. Required.
	ServerURL string
	// Next serves every path the console does not answer itself, and the console's
	// static pages (/admin/, /admin/term.html, which get the console's headers added);
	// usually control.Server.Handler, which serves the embedded web files. Nil: 404.
	Next http.Handler
	// Logf logs; nil means no logging. Secrets (passwords, tokens, keys) are never logged.
	Logf func(format string, args ...any)
	// OIDC, if non-nil, offers single sign-on with its provider; its RedirectURL must be
	// ServerURL + OIDCCallbackPath. Users appear on first sign-in, as members.
	OIDC *oidc.RP
	// TrustedProxies are the reverse proxies in front of this server: only from a peer in
	// one of them are X-Forwarded-For and Forwarded read for the client's address (which
	// the login limits count). Nil: no forwarded header is trusted.
	TrustedProxies []netip.Prefix
	// EventInterval is the shortest time between two machines messages on the events
	// WebSocket; 0 means 100ms (at most ~10 messages a second).
	EventInterval time.Duration
}

// Console is the console's HTTP handler. Close it to end its WebSockets.
type Console struct {
	srv    *control.Server
	o      Options
	origin string // scheme://host[:port] of ServerURL
	https  bool
	logf   func(string, ...any)
	mux    *http.ServeMux // the JSON API
	pages  *http.ServeMux // the web-flow pages: /check/, /login/, /auth/oidc/

	formKey [32]byte // keys the pages' form tokens

	byUser   *limiter   // failed logins per real user (by id; never forgotten early)
	byEmail  *limiter   // failed logins per email that names no user
	byAddr   *limiter   // failed logins per client address (IPv6 per /64)
	hashing  inFlight   // password checks in progress per client address
	refusals refusalLog // coalesces refused attempts in the audit log

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns the console of srv.
func New(srv *control.Server, o Options) (*Console, error) {
	if srv == nil {
		return nil, errors.New("console: no control server")
	}
	origin, https, err := originOf(o.ServerURL)
	if err != nil {
		return nil, err
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.EventInterval <= 0 {
		o.EventInterval = 100 * time.Millisecond
	}
	if o.Next == nil {
		o.Next = http.NotFoundHandler()
	}
	c := &Console{srv: srv, o: o, origin: origin, https: https, logf: o.Logf,
		byUser:  newLimiter(loginWindow, maxFailuresPerEmail, 0),
		byEmail: newLimiter(loginWindow, maxFailuresPerEmail, maxLimiterKeys),
		byAddr:  newLimiter(loginWindow, maxFailuresPerAddr, maxLimiterKeys)}
	if o.OIDC != nil {
		// Sign-ins in progress survive a restart: their cookies are sealed under a key of the store.
		k, err := srv.Secret(context.Background(), "oidc_state")
		if err == nil {
			err = o.OIDC.SetStateKey(k)
		}
		if err != nil {
			return nil, fmt.Errorf("console: single sign-on state key: %w", err)
		}
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	rand.Read(c.formKey[:])
	c.mux = c.routes()
	c.pages = c.pageRoutes()
	return c, nil
}

// originOf returns the origin of a base URL as browsers send it (default port left out).
func originOf(serverURL string) (string, bool, error) {
	u, err := url.Parse(serverURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", false, fmt.Errorf("console: ServerURL %q is not an http:// or https:// URL with a host", serverURL)
	}
	host := strings.ToLower(u.Host)
	if (u.Scheme == "http" && u.Port() == "80") || (u.Scheme == "https" && u.Port() == "443") {
		host = strings.ToLower(u.Hostname())
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	}
	return u.Scheme + "://" + host, u.Scheme == "https", nil
}

// Close ends the console's WebSockets and waits for them.
func (c *Console) Close() error {
	c.cancel()
	c.wg.Wait()
	return nil
}

// ServeHTTP serves the API under /api/v1/, the console's pages under /admin/, the web-flow
// pages (/check/{id}, /login/{id}, /auth/oidc/start and the OIDC callback), and passes
// everything else to Options.Next.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == APIPrefix || strings.HasPrefix(p, APIPrefix+"/"):
		r.Body = http.MaxBytesReader(w, r.Body, bodyLimit(p))
		setSecurityHeaders(w.Header())
		w.Header().Set("Cache-Control", "no-store")
		c.mux.ServeHTTP(w, r)
	case p == "/admin":
		http.Redirect(w, r, "/admin/", http.StatusMovedPermanently)
	case strings.HasPrefix(p, "/admin/"):
		setSecurityHeaders(w.Header())
		c.o.Next.ServeHTTP(w, r)
	case strings.HasPrefix(p, "/check/") || strings.HasPrefix(p, "/login/") || strings.HasPrefix(p, "/auth/"):
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		c.pages.ServeHTTP(w, r)
	default:
		c.o.Next.ServeHTTP(w, r)
	}
}

// SetSecurityHeaders sets the headers every page and answer of the server gets: the
// ContentSecurityPolicy (no framing), nosniff and a same-origin referrer policy.
func SetSecurityHeaders(h http.Header) { setSecurityHeaders(h) }

func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
}

// routes builds the API's mux. Each handler states who may call it.
func (c *Console) routes() *http.ServeMux {
	m := http.NewServeMux()
	p := APIPrefix
	m.HandleFunc("POST "+p+"/login", c.public(c.login))
	m.HandleFunc("POST "+p+"/logout", c.public(c.logout))
	m.HandleFunc("GET "+p+"/me", c.member(c.me))
	m.HandleFunc("PUT "+p+"/me/password", c.member(c.changeOwnPassword))
	m.HandleFunc("GET "+p+"/auth-methods", c.public(c.authMethods))
	m.HandleFunc("GET "+p+"/oidc/start", c.oidcStart)

	m.HandleFunc("GET "+p+"/machines", c.member(c.machines))
	m.HandleFunc("GET "+p+"/events", c.member(c.events))
	m.HandleFunc("GET "+p+"/machines/{id}/ssh-users", c.member(c.sshUsers))
	m.HandleFunc("POST "+p+"/machines/{id}/sessions", c.member(c.newSession))
	m.HandleFunc("DELETE "+p+"/machines/{id}", c.admin(c.deleteMachine))
	m.HandleFunc("PUT "+p+"/machines/{id}/tags", c.admin(c.setTags))
	m.HandleFunc("POST "+p+"/machines/{id}/expire", c.admin(c.expireMachine))

	m.HandleFunc("GET "+p+"/policy", c.admin(c.getPolicy))
	m.HandleFunc("PUT "+p+"/policy", c.admin(c.putPolicy))
	m.HandleFunc("POST "+p+"/policy/validate", c.admin(c.validatePolicy))

	m.HandleFunc("GET "+p+"/keys", c.member(c.keys))
	m.HandleFunc("POST "+p+"/keys", c.member(c.createKey))
	m.HandleFunc("DELETE "+p+"/keys/{id}", c.member(c.revokeKey))

	m.HandleFunc("GET "+p+"/users", c.admin(c.users))
	m.HandleFunc("POST "+p+"/users", c.admin(c.createUser))
	m.HandleFunc("DELETE "+p+"/users/{id}", c.admin(c.deleteUser))
	m.HandleFunc("PUT "+p+"/users/{id}/password", c.admin(c.resetPassword))

	m.HandleFunc("GET "+p+"/audit", c.admin(c.audit))

	m.HandleFunc(p+"/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no console API endpoint %s %s", safetext.Bounded(r.Method, 16), safetext.Bounded(r.URL.Path, 0)))
	})
	return m
}

// pageRoutes builds the mux of the web-flow pages; anyone may visit them (each says who may
// act on it).
func (c *Console) pageRoutes() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET "+OIDCStartPath, c.oidcStart)
	m.HandleFunc("GET "+OIDCCallbackPath, c.oidcCallback)
	m.HandleFunc("GET /check/{id}", c.checkPage)
	m.HandleFunc("POST /check/{id}", c.checkPost)
	m.HandleFunc("GET /check/{id}/sso", c.checkSSO)
	m.HandleFunc("GET /login/{id}", c.loginPage)
	m.HandleFunc("POST /login/{id}", c.loginPost)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.renderMessage(w, http.StatusNotFound, "Not found", message{Class: "error", Text: "There is no page " + safetext.Bounded(r.URL.Path, 0) + " here."})
	})
	return m
}
