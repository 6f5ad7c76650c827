package control

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"tsconnect/controlws"
	"tsconnect/internal/eventually"
)

// loginCall is one interactive register in flight.
type loginCall struct {
	urls chan controlws.LoginURL
	done chan struct{}
	r    *controlws.RegisterResponse
	err  error
}

func startLogin(m *machine, hostname string, ephemeral bool) *loginCall {
	c := &loginCall{urls: make(chan controlws.LoginURL, 1), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c.r, c.err = m.c.RegisterInteractive(ctx, controlws.RegisterRequest{NodeKey: m.nk.Public(), Ephemeral: ephemeral,
			Hostinfo: controlws.Hostinfo{Hostname: hostname, OS: "linux"}}, func(u controlws.LoginURL) { c.urls <- u })
	}()
	return c
}

func (c *loginCall) url(t *testing.T, e *env) string {
	t.Helper()
	select {
	case u := <-c.urls:
		id, ok := strings.CutPrefix(u.URL, e.cfg.ServerURL+"/login/")
		if !ok || len(id) != 32 {
			t.Fatalf("login URL %q: want %s/login/ + 32 hex digits", u.URL, e.cfg.ServerURL)
		}
		return id
	case <-c.done:
		t.Fatalf("register ended without a login URL: %+v %v", c.r, c.err)
	}
	return ""
}

// TestInteractiveLogin: a node without auth key gets a login URL; completing it registers
// the node to that user (ephemeral as asked), and it then follows its map as usual.
func TestInteractiveLogin(t *testing.T) {
	e := newEnv(t, nil)
	bob := e.user("bob@example.com")
	ctx := context.Background()
	m := e.newMachine()
	c := startLogin(m, "Bob's Laptop", true)
	id := c.url(t, e)
	info, err := e.s.PendingLogin(ctx, id)
	if err != nil || info.Hostname != "Bob's Laptop" || info.OS != "linux" || info.Expires.IsZero() {
		t.Fatalf("PendingLogin = %+v, %v", info, err)
	}
	if err := e.s.CompleteLogin(ctx, id, bob.ID); err != nil {
		t.Fatal(err)
	}
	<-c.done
	if c.err != nil {
		t.Fatal(c.err)
	}
	if c.r.User.LoginName != "bob@example.com" || c.r.Node.User != bob.ID || !c.r.Node.Ephemeral || len(c.r.Node.Tags) != 0 {
		t.Fatalf("registered %+v as %+v; want bob's ephemeral untagged node", c.r.Node, c.r.User)
	}
	w := m.watch(t)
	w.waitFor(t, "the node's own map", func(nm *controlws.NetworkMap) bool { return nm.Self.ID == c.r.Node.ID })
	if _, err := e.s.PendingLogin(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("PendingLogin after completion: %v, want ErrNotFound", err)
	}
	if err := e.s.CompleteLogin(ctx, id, bob.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("completing twice: %v, want ErrNotFound", err)
	}
	// Registered: asking again answers at once, without a URL.
	again := startLogin(m, "Bob's Laptop", true)
	<-again.done
	if again.err != nil || again.r.Node.ID != c.r.Node.ID || len(again.urls) != 0 {
		t.Errorf("interactive register of a registered machine: %+v %v", again.r, again.err)
	}
}

// TestInteractiveLoginExpires: nobody signs in: the node gets CodeLoginExpired; a node that
// goes away takes its login with it.
func TestInteractiveLoginExpires(t *testing.T) {
	e := newEnv(t, nil)
	e.s.flows.mu.Lock()
	e.s.flows.loginTimeout = 300 * time.Millisecond
	e.s.flows.mu.Unlock()
	c := startLogin(e.newMachine(), "x", false)
	c.url(t, e)
	<-c.done
	wantCode(t, c.err, controlws.CodeLoginExpired)

	e.s.flows.mu.Lock()
	e.s.flows.loginTimeout = 0
	e.s.flows.mu.Unlock()
	m := e.newMachine()
	c = startLogin(m, "y", false)
	id := c.url(t, e)
	m.c.Close()
	<-c.done
	eventually.True(t, "the login of a gone node to be dropped", func() bool {
		_, err := e.s.PendingLogin(context.Background(), id)
		return errors.Is(err, ErrNotFound)
	})
	if err := e.s.CompleteLogin(context.Background(), id, e.user("bob@example.com").ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("completing a gone node's login: %v, want ErrNotFound", err)
	}
}
