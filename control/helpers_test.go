package control

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"tsconnect/control/store"
	"tsconnect/controlws"
	"tsconnect/internal/leakcheck"
	"tsconnect/internal/testclock"
	"tsconnect/key"
)

// env is a server on a real SQLite file behind a real loopback HTTP server. The HTTP
// server outlives Server restarts (restart swaps the handler). It is control/controltest's
// harness for the in-package tests, which cannot import that package (it imports control).
type env struct {
	t     *testing.T
	dir   string
	cfg   Config
	clock *testclock.Clock // the server's Now unless the test sets its own
	s     *Server
	hs    *httptest.Server
	h     atomic.Pointer[http.Handler]
}

func newEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	leakcheck.Check(t)
	e := &env{t: t, dir: t.TempDir(), clock: new(testclock.Clock)}
	e.hs = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*e.h.Load()).ServeHTTP(w, r)
	}))
	e.cfg = Config{StateDir: e.dir, ServerURL: e.hs.URL, Logf: t.Logf, Now: e.clock.Now}
	if mod != nil {
		mod(&e.cfg)
	}
	e.start()
	t.Cleanup(func() {
		e.s.Close()
		e.hs.CloseClientConnections()
		e.hs.Close()
	})
	return e
}

func (e *env) start() {
	e.t.Helper()
	s, err := New(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.s = s
	h := s.Handler()
	e.h.Store(&h)
}

// restart closes the server and opens a new one on the same state directory.
func (e *env) restart() {
	e.t.Helper()
	if err := e.s.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.start()
}

func (e *env) user(email string) User {
	e.t.Helper()
	u, err := e.s.CreateUser(context.Background(), email, RoleMember)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

func (e *env) authKey(o AuthKeyOptions) string {
	e.t.Helper()
	secret, _, err := e.s.CreateAuthKey(context.Background(), o)
	if err != nil {
		e.t.Fatal(err)
	}
	return secret
}

// machine is a test node: a machine key, a node key and a control client.
type machine struct {
	mk key.Private
	nk key.Private
	c  *controlws.Client
}

func (e *env) dial(mk key.Private) *controlws.Client {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := controlws.Dial(ctx, controlws.DialOptions{ServerURL: e.hs.URL, MachineKey: mk})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

func (e *env) newMachine() *machine {
	mk := key.NewPrivate()
	return &machine{mk: mk, nk: key.NewPrivate(), c: e.dial(mk)}
}

func (m *machine) register(authKey, hostname string) (*controlws.RegisterResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return m.c.Register(ctx, controlws.RegisterRequest{AuthKey: authKey, NodeKey: m.nk.Public(),
		Hostinfo: controlws.Hostinfo{Hostname: hostname, OS: "linux"}})
}

func (e *env) mustRegister(authKey, hostname string) (*machine, controlws.Node) {
	e.t.Helper()
	m := e.newMachine()
	r, err := m.register(authKey, hostname)
	if err != nil {
		e.t.Fatalf("register %s: %v", hostname, err)
	}
	return m, r.Node
}

// watcher follows a node's map stream and lets a test wait for a condition on it.
type watcher struct {
	maps   chan *controlws.NetworkMap
	done   chan error
	cancel context.CancelFunc
	last   *controlws.NetworkMap
}

func (m *machine) watch(t *testing.T) *watcher {
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{maps: make(chan *controlws.NetworkMap, 1024), done: make(chan error, 1), cancel: cancel}
	go func() {
		w.done <- m.c.WatchMaps(ctx, controlws.MapRequest{NodeKey: m.nk.Public()}, func(nm *controlws.NetworkMap) {
			select {
			case w.maps <- nm:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-w.done
		w.done <- nil
	})
	return w
}

// waitFor returns the first map satisfying cond; it fails the test if the stream ends or
// nothing matches within a generous deadline (a hang guard, not a timing assertion).
func (w *watcher) waitFor(t *testing.T, what string, cond func(*controlws.NetworkMap) bool) *controlws.NetworkMap {
	t.Helper()
	if w.last != nil && cond(w.last) {
		return w.last
	}
	deadline := time.After(20 * time.Second)
	for {
		select {
		case nm := <-w.maps:
			w.last = nm
			if cond(nm) {
				return nm
			}
		case err := <-w.done:
			w.done <- err
			t.Fatalf("waiting for %s: map stream ended: %v", what, err)
		case <-deadline:
			t.Fatalf("waiting for %s: no such map; last: %+v", what, w.last)
		}
	}
}

// ended waits for the stream to end and returns its error.
func (w *watcher) ended(t *testing.T) error {
	t.Helper()
	select {
	case err := <-w.done:
		w.done <- err
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("map stream did not end")
		return nil
	}
}

func hasPeer(nm *controlws.NetworkMap, id int64) bool {
	for _, p := range nm.Peers {
		if p.ID == id {
			return true
		}
	}
	return false
}

func peer(nm *controlws.NetworkMap, id int64) (controlws.Node, bool) {
	for _, p := range nm.Peers {
		if p.ID == id {
			return p, true
		}
	}
	return controlws.Node{}, false
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var ce *controlws.Error
	if !errors.As(err, &ce) {
		t.Fatalf("got error %v, want a control error with code %s", err, code)
	}
	if ce.Code != code {
		t.Fatalf("got code %s (%s), want %s", ce.Code, ce.Message, code)
	}
}

func (e *env) nodes() []controlws.Node {
	e.t.Helper()
	ns, err := e.s.Nodes(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return ns
}

type storeTx = store.Tx

func newKey() key.Private { return key.NewPrivate() }
