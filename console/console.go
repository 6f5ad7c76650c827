// Package console serves the admin console's pages and the one admin API (package api), to
// console sign-ins, API tokens and the local admin on the admin socket alike.
package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"tsconnect/console/api"
	"tsconnect/control"
	"tsconnect/internal/safetext"
	"tsconnect/oidc"
)

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
	origin string                   // scheme://host[:port] of ServerURL
	csp    atomic.Pointer[cspEntry] // the policy for the replicas listed last (csp.go)
	https  bool
	logf   func(string, ...any)
	mux    *http.ServeMux // the API for sign-ins and API tokens
	sock   *http.ServeMux // the same API for the local admin (ServeAdmin)
	pages  *http.ServeMux // the web-flow pages: /check/, /login/, /auth/oidc/

	formKey [32]byte // keys the pages' form tokens (a secret of the store)

	byUser    *limiter   // failed logins per real user (by id; never forgotten early)
	byEmail   *limiter   // failed logins per email that names no user
	byAddr    *limiter   // failed logins per client address (IPv6 per /64)
	badTokens *limiter   // failed API token attempts per client address
	hashing   inFlight   // password checks in progress per client address
	refusals  refusalLog // coalesces refused attempts in the audit log

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
		byUser:    newLimiter(loginWindow, maxFailuresPerEmail, 0),
		byEmail:   newLimiter(loginWindow, maxFailuresPerEmail, maxLimiterKeys),
		byAddr:    newLimiter(loginWindow, maxFailuresPerAddr, maxLimiterKeys),
		badTokens: newLimiter(loginWindow, maxFailuresPerAddr, maxLimiterKeys)}
	if srv.Replicated() {
		// Replicas count failures in the store, so the limits hold across them.
		for scope, l := range map[string]*limiter{"user": c.byUser, "email": c.byEmail, "addr": c.byAddr, "token": c.badTokens} {
			l.shared = &sharedLimit{srv: srv, scope: scope, logf: c.logf}
		}
	}
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
	// Form tokens are keyed by a secret of the store, so a page served by one replica of
	// control may be posted to another (behind one URL), and after a restart.
	fk, err := srv.Secret(context.Background(), "form_token")
	if err != nil {
		return nil, fmt.Errorf("console: form key: %w", err)
	}
	copy(c.formKey[:], fk)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.mux = c.apiMux(c.webCaller)
	c.sock = c.apiMux(socketCaller)
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

// ServeHTTP serves the API under api.Prefix, the console's pages under /admin/, session links
// (SSHLinkPrefix), the web-flow pages (/check/{id}, /login/{id}, /auth/oidc/start and the OIDC
// callback), and passes
// everything else to Options.Next.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == api.Prefix || strings.HasPrefix(p, api.Prefix+"/"):
		c.serveAPI(c.mux, w, r)
	case p == "/admin":
		http.Redirect(w, r, "/admin/", http.StatusMovedPermanently)
	case strings.HasPrefix(p, "/admin/"):
		c.setSecurityHeaders(w.Header())
		c.o.Next.ServeHTTP(w, r)
	case strings.HasPrefix(p, SSHLinkPrefix):
		c.sshLink(w, r)
	case strings.HasPrefix(p, "/check/") || strings.HasPrefix(p, "/login/") || strings.HasPrefix(p, "/auth/"):
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		c.pages.ServeHTTP(w, r)
	default:
		c.o.Next.ServeHTTP(w, r)
	}
}

// SetSecurityHeaders sets the headers every page and answer of the server gets: the
// ContentSecurityPolicy (no framing), nosniff and a same-origin referrer policy.
func SetSecurityHeaders(h http.Header) { setSecurityHeaders(h, ContentSecurityPolicy) }

// setSecurityHeaders sets the security headers of the console's pages and answers, with
// its policy (which allows the DERP map's relays).
func (c *Console) setSecurityHeaders(h http.Header) { setSecurityHeaders(h, c.policy()) }

func setSecurityHeaders(h http.Header, csp string) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
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
