package console

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"

	"tsconnect/control"
	"tsconnect/control/controltest"
	"tsconnect/controlws"
	"tsconnect/internal/leakcheck"
	"tsconnect/key"
	"tsconnect/oidc"
)

// env is a control server on a real SQLite file (control/controltest) with the console in
// front of it, behind one loopback HTTP server that outlives restarts.
type env struct {
	t   *testing.T
	cs  *controltest.Server
	dir string
	hs  *httptest.Server
	srv *control.Server // the running one; restart replaces it
	con *Console
	rp  *oidc.RP // single sign-on, when set up (oidc_test.go)
	// opts, if non-nil, edits the console's Options at every start.
	opts func(*Options)
}

func newEnv(t *testing.T) *env { t.Helper(); return newEnvWith(t, nil) }

// newEnvWith is newEnv with setup run once the server's URL is known, before the console starts.
func newEnvWith(t *testing.T, setup func(*env)) *env {
	t.Helper()
	leakcheck.Check(t)
	e := &env{t: t, cs: controltest.NewUnstarted(t)}
	e.dir, e.hs = e.cs.Dir, e.cs.HTTP
	if setup != nil {
		setup(e)
	}
	e.cs.Start(&controltest.Options{Front: e.front})
	return e
}

// front starts the console in front of a new control server.
func (e *env) front(srv *control.Server) (http.Handler, func()) {
	e.t.Helper()
	o := Options{ServerURL: e.hs.URL, Next: srv.Handler(), Logf: e.t.Logf, OIDC: e.rp}
	if e.opts != nil {
		e.opts(&o)
	}
	con, err := New(srv, o)
	if err != nil {
		e.t.Fatal(err)
	}
	e.srv, e.con = srv, con
	return con, func() { con.Close() }
}

// restart closes control and the console and opens new ones on the same state.
func (e *env) restart() { e.t.Helper(); e.cs.Restart() }

func (e *env) user(email string, role control.Role, password string) control.User {
	e.t.Helper()
	u, err := e.srv.CreateUserWithPassword(context.Background(), email, role, password)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

func (e *env) setPolicy(text string) {
	e.t.Helper()
	if _, err := e.srv.SetPolicy(context.Background(), []byte(text), "test"); err != nil {
		e.t.Fatal(err)
	}
}

// register registers a node with a fresh machine and returns its control client and node.
func (e *env) register(o control.AuthKeyOptions, hi controlws.Hostinfo) (*controlws.Client, key.Private, controlws.Node) {
	e.t.Helper()
	c, nk, r, err := e.registerWith(e.cs.AuthKey(o), hi)
	if err != nil {
		e.t.Fatalf("register %s: %v", hi.Hostname, err)
	}
	return c, nk, r.Node
}

func (e *env) registerWith(secret string, hi controlws.Hostinfo) (*controlws.Client, key.Private, *controlws.RegisterResponse, error) {
	e.t.Helper()
	return e.cs.Register(secret, hi)
}

// client is a browser: a cookie jar, the console's origin, and the CSRF token once known.
type client struct {
	e      *env
	hc     *http.Client
	origin string // sent as Origin on state-changing requests; "" sends none
	csrf   string
}

func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{e: e, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, origin: e.hs.URL}
}

type answer struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (a answer) str(k string) string { s, _ := a.body[k].(string); return s }

func (c *client) do(method, path string, in any, hdr ...string) answer {
	c.e.t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			c.e.t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.e.hs.URL+path, body)
	if err != nil {
		c.e.t.Fatal(err)
	}
	if method != http.MethodGet && c.origin != "" {
		req.Header.Set("Origin", c.origin)
	}
	if c.csrf != "" {
		req.Header.Set(CSRFHeader, c.csrf)
	}
	a := c.send(req, hdr...)
	if len(a.raw) > 0 && strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(a.raw, &a.body); err != nil {
			c.e.t.Fatalf("%s %s: bad JSON %q: %v", method, path, a.raw, err)
		}
	}
	return a
}

// send sets the header pairs of hdr on req (an empty value deletes the header), sends it
// and reads the answer.
func (c *client) send(req *http.Request, hdr ...string) answer {
	c.e.t.Helper()
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	a.raw, _ = io.ReadAll(resp.Body)
	return a
}

// want checks an answer's status (and, for errors, its code).
func (a answer) want(t *testing.T, status int, code string) answer {
	t.Helper()
	if a.status != status || (code != "" && a.str("code") != code) {
		t.Fatalf("got %d %s, want %d %s", a.status, a.raw, status, code)
	}
	return a
}

func (c *client) login(email, password string) answer {
	c.e.t.Helper()
	a := c.do("POST", "/api/v1/login", map[string]string{"email": email, "password": password})
	if a.status == http.StatusOK {
		c.csrf = a.str("csrfToken")
	}
	return a
}

func (c *client) mustLogin(email, password string) *client {
	c.e.t.Helper()
	c.login(email, password).want(c.e.t, http.StatusOK, "")
	return c
}

// decode re-decodes an answer's raw body into v.
func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.raw, v); err != nil {
		t.Fatalf("decoding %s: %v", a.raw, err)
	}
}
