package console

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"tsconnect/console/api"
	"tsconnect/control"
	"tsconnect/internal/safetext"
)

// route is one route of the API: a method and a path under api.Prefix, who may call it,
// and its handler. docs/openapi.json lists exactly these (a test compares them).
type route struct {
	method, path string
	access       access
	h            handler
}

// Who may call a route.
var (
	anyone     = access{public: true}
	memberRead = access{scope: control.ScopeRead}
	adminRead  = access{admin: true, scope: control.ScopeRead}
	signInOnly = access{signInOnly: true}
	socketOnly = access{socketOnly: true}
	// noToken routes are for sign-ins and the admin socket: a token cannot mint tokens.
	noToken = access{}
)

func member(scope string) access { return access{scope: scope} }
func admin(scope string) access  { return access{admin: true, scope: scope} }

// routes is the API, once, for every way to authenticate.
func (c *Console) routes() []route {
	return []route{
		{"POST", "/login", anyone, c.login},
		{"POST", "/logout", anyone, c.logout},
		{"GET", "/auth-methods", anyone, c.authMethods},
		{"GET", "/oidc/start", anyone, func(w http.ResponseWriter, r *http.Request, _ *caller) { c.oidcStart(w, r) }},
		{"GET", "/me", memberRead, c.me},
		{"PUT", "/me/password", signInOnly, c.changeOwnPassword},

		{"GET", "/nodes", memberRead, c.nodes},
		{"GET", "/events", memberRead, c.events},
		{"GET", "/nodes/{id}/ssh-users", memberRead, c.sshUsers},
		{"GET", "/nodes/{id}/paths", memberRead, c.peerPaths},
		{"POST", "/nodes/{id}/ssh-launch", member(control.ScopeNodes), c.sshLaunch},
		{"POST", "/nodes/{id}/vnc-launch", member(control.ScopeNodes), c.vncLaunch},
		{"POST", "/recordings/launch", member(control.ScopeNodes), c.recordingsLaunch},
		{"DELETE", "/nodes/{id}", admin(control.ScopeNodes), c.deleteNode},
		{"PUT", "/nodes/{id}/tags", admin(control.ScopeNodes), c.setTags},
		{"POST", "/nodes/{id}/expire", admin(control.ScopeNodes), c.expireNode},
		{"PUT", "/nodes/{id}/key-expiry", admin(control.ScopeNodes), c.setNodeKeyExpiry},
		{"GET", "/settings/node-key-expiry", adminRead, c.nodeKeyExpiry},
		{"PUT", "/settings/node-key-expiry", admin(control.ScopeNodes), c.setNetworkKeyExpiry},

		{"GET", "/policy", adminRead, c.getPolicy},
		{"PUT", "/policy", admin(control.ScopePolicy), c.putPolicy},
		{"POST", "/policy/validate", admin(control.ScopeRead), c.validatePolicy},
		{"GET", "/policy/versions", adminRead, c.policyVersions},
		{"GET", "/policy/versions/{n}", adminRead, c.policyVersion},
		{"POST", "/policy/versions/{n}/restore", admin(control.ScopePolicy), c.restorePolicy},

		{"GET", "/keys", memberRead, c.keys},
		{"POST", "/keys", member(control.ScopeKeys), c.createKey},
		{"DELETE", "/keys/{id}", member(control.ScopeKeys), c.revokeKey},

		{"GET", "/users", adminRead, c.users},
		{"POST", "/users", admin(control.ScopeUsers), c.createUser},
		{"DELETE", "/users/{user}", admin(control.ScopeUsers), c.deleteUser},
		{"PUT", "/users/{user}/password", admin(control.ScopeUsers), c.resetPassword},

		{"GET", "/api-tokens", noToken, c.apiTokens},
		{"POST", "/api-tokens", noToken, c.createAPIToken},
		{"DELETE", "/api-tokens/{id}", noToken, c.revokeAPIToken},

		{"GET", "/sessions", memberRead, c.sshSessions},
		{"DELETE", "/sessions/{id}/{remote}", admin(control.ScopeNodes), c.endSSHSession},

		{"GET", "/audit", adminRead, c.audit},
		{"GET", "/audit/export", adminRead, c.auditExport},
		{"GET", "/backup", socketOnly, c.backup},
	}
}

// apiMux builds the API's mux with auth in front of every route that needs a caller.
func (c *Console) apiMux(auth authenticator) *http.ServeMux {
	m := http.NewServeMux()
	for _, rt := range c.routes() {
		m.HandleFunc(rt.method+" "+api.Prefix+rt.path, c.guard(auth, rt.access, rt.h))
	}
	m.HandleFunc(api.Prefix+"/", func(w http.ResponseWriter, r *http.Request) { notFound(m, w, r) })
	return m
}

// notFound answers a request no route matched: 405 with Allow when the path has routes
// for other methods, else 404.
func notFound(m *http.ServeMux, w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, method := range []string{"GET", "POST", "PUT", "DELETE"} {
		probe := &http.Request{Method: method, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := m.Handler(probe); pattern != "" && pattern != api.Prefix+"/" {
			allow = append(allow, method)
		}
	}
	what := safetext.Bounded(r.Method, 16) + " " + safetext.Bounded(r.URL.Path, 0)
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, codeMethodNotAllowed, fmt.Sprintf("%s: this path takes %s", what, strings.Join(allow, ", ")))
		return
	}
	writeError(w, http.StatusNotFound, codeNotFound, "no API endpoint "+what)
}

// serveAPI serves a request of the API with its body bound and the API's headers.
func (c *Console) serveAPI(m *http.ServeMux, w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, bodyLimit(r.URL.Path))
	c.setSecurityHeaders(w.Header())
	w.Header().Set("Cache-Control", "no-store")
	m.ServeHTTP(w, r)
}

// ServeAdmin serves the API on ln (the admin socket, control.ListenAdmin) until ln is
// closed or the console closes; it then returns nil. Every request on it is the local
// admin's (role admin, named "local admin"): keep ln a private unix socket.
func (c *Console) ServeAdmin(ln net.Listener) error {
	hs := &http.Server{ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p := r.URL.Path; p != api.Prefix && !strings.HasPrefix(p, api.Prefix+"/") {
				writeError(w, http.StatusNotFound, codeNotFound, "the admin socket serves only "+api.Prefix+"/")
				return
			}
			c.serveAPI(c.sock, w, r)
		})}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-c.ctx.Done():
			hs.Close()
		case <-stop:
		}
	}()
	err := hs.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
