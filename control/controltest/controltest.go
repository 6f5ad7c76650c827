// Package controltest starts a control server for tests: its state in a real SQLite file
// under t.TempDir(), served on a loopback listener that outlives restarts.
//
// The tests of control, the console and e2e start control through it:
//
//	ts := controltest.New(t, &controltest.Options{Config: func(c *control.Config) { c.Now = clock.Now }})
//	u := ts.User("ada@example.com", control.RoleMember)
//	key := ts.AuthKey(control.AuthKeyOptions{User: u.ID})
//
// (control's own in-package tests cannot import it: their env in control/helpers_test.go
// mirrors it.)
package controltest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"tsconnect/control"
	"tsconnect/controlws"
	"tsconnect/key"
)

// hangGuard bounds the waits of dials and registrations; it is not a timing assertion.
const hangGuard = 20 * time.Second

// Options configure a Server; the zero value serves control's handler with its defaults.
type Options struct {
	// Config edits the configuration before every start (StateDir, ServerURL and Logf are
	// set already): a clock in Now, limits, the DERP map.
	Config func(*control.Config)
	// Front, if set, builds what the listener serves in front of every new control server
	// (a console, say); close runs before that server closes. nil serves its Handler.
	Front func(s *control.Server) (h http.Handler, close func())
}

// Server is a control server on loopback. Its fields other than Control stay the same
// across restarts.
type Server struct {
	// Control is the running server; Restart replaces it.
	Control *control.Server
	// URL is the base URL, http://127.0.0.1:port, also the server's Config.ServerURL.
	URL string
	// Dir is the state directory.
	Dir string
	// HTTP is the loopback HTTP server.
	HTTP *httptest.Server

	t     testing.TB
	opts  Options
	h     atomic.Pointer[http.Handler]
	front func()
}

// unavailable answers while no control server runs on the listener.
var unavailable = http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "controltest: control is not running", http.StatusServiceUnavailable)
}))

// New starts a server that stops when t ends. o may be nil.
func New(t testing.TB, o *Options) *Server {
	t.Helper()
	s := NewUnstarted(t)
	s.Start(o)
	return s
}

// NewUnstarted opens the listener and the state directory but starts no control server:
// for tests that need the URL first (to configure single sign-on, say). Call Start.
func NewUnstarted(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, Dir: t.TempDir()}
	s.h.Store(&unavailable)
	s.HTTP = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*s.h.Load()).ServeHTTP(w, r)
	}))
	s.URL = s.HTTP.URL
	t.Cleanup(s.Close)
	return s
}

// Start starts control on s with o (nil: the options of the last start), which Restart
// reuses; after Stop it brings control back on the same state and listener.
func (s *Server) Start(o *Options) {
	s.t.Helper()
	if o != nil {
		s.opts = *o
	}
	s.start()
}

// Stop closes control (and the front) and cuts its connections, but keeps the listener:
// until Start, clients reach a server that answers 503, as during an outage.
func (s *Server) Stop() {
	s.t.Helper()
	s.h.Store(&unavailable)
	if err := s.stop(); err != nil {
		s.t.Fatal(err)
	}
	s.HTTP.CloseClientConnections()
}

func (s *Server) start() {
	s.t.Helper()
	cfg := control.Config{StateDir: s.Dir, ServerURL: s.URL, Logf: s.t.Logf}
	if s.opts.Config != nil {
		s.opts.Config(&cfg)
	}
	srv, err := control.New(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	h := srv.Handler()
	s.front = nil
	if s.opts.Front != nil {
		h, s.front = s.opts.Front(srv)
	}
	s.Control = srv
	s.h.Store(&h)
}

// stop closes the front and control, if running.
func (s *Server) stop() error {
	if s.Control == nil {
		return nil
	}
	if s.front != nil {
		s.front()
	}
	err := s.Control.Close()
	s.Control = nil
	return err
}

// Restart closes control (and the front) and starts a new one on the same state and
// listener; connections to the old one are cut.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Close stops control and the listener: clients then find nothing listening. It runs
// when the test ends; calling it earlier is fine.
func (s *Server) Close() {
	if err := s.stop(); err != nil {
		s.t.Errorf("closing control: %v", err)
	}
	s.HTTP.CloseClientConnections()
	s.HTTP.Close()
}

// User creates a user with role.
func (s *Server) User(email string, role control.Role) control.User {
	s.t.Helper()
	u, err := s.Control.CreateUser(context.Background(), email, role)
	if err != nil {
		s.t.Fatal(err)
	}
	return u
}

// AuthKey creates an auth key and returns its secret.
func (s *Server) AuthKey(o control.AuthKeyOptions) string {
	s.t.Helper()
	secret, _, err := s.Control.CreateAuthKey(context.Background(), o)
	if err != nil {
		s.t.Fatal(err)
	}
	return secret
}

// Dial opens a control connection with machine key mk, closed when the test ends.
func (s *Server) Dial(mk key.Private) *controlws.Client {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	c, err := controlws.Dial(ctx, controlws.DialOptions{ServerURL: s.URL, MachineKey: mk})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { c.Close() })
	return c
}

// Register registers a new node with auth key secret over a new control connection and
// returns the connection, the node key and control's answer (or its refusal).
func (s *Server) Register(secret string, hi controlws.Hostinfo) (*controlws.Client, key.Private, *controlws.RegisterResponse, error) {
	s.t.Helper()
	c := s.Dial(key.NewPrivate())
	nk := key.NewPrivate()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	r, err := c.Register(ctx, controlws.RegisterRequest{AuthKey: secret, NodeKey: nk.Public(), Hostinfo: hi})
	return c, nk, r, err
}
