package control

import (
	"context"
	"errors"
	"testing"
	"time"

	"tsconnect/controlws"
)

// reconnect gives m a new control connection after a restart, re-registered (as an agent
// does before it asks again).
func (e *env) reconnect(t *testing.T, m *machine) {
	t.Helper()
	m.c = e.dial(m.mk)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := m.c.Register(ctx, controlws.RegisterRequest{NodeKey: m.nk.Public()}); err != nil {
		t.Fatalf("re-register after the restart: %v", err)
	}
}

// askAgain is the agent's sshCheck after its control connection came back, for a login it
// has held for heldFor.
func askAgain(agent *machine, src controlws.Node, localUser string, heldFor time.Duration) *checkCall {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	c := &checkCall{pending: make(chan controlws.SSHCheckVerdict, 4), done: make(chan struct{}), cancel: cancel}
	req := controlws.SSHCheckRequest{SrcNode: src.ID, SrcAddr: src.Addresses[0].Addr(), User: localUser, LocalUser: localUser, HeldFor: heldFor}
	go func() {
		defer close(c.done)
		c.v, c.err = agent.c.SSHCheck(ctx, req, func(v controlws.SSHCheckVerdict) { c.pending <- v })
	}()
	return c
}

// TestCheckSurvivesRestart: a check URL shown before control restarts still works after it.
// The agent asks again on its new connection and waits on the same check (no new URL);
// approving it lets the held login in. Approved while the agent is still away, the agent's
// next ask gets the accept at once.
func TestCheckSurvivesRestart(t *testing.T) {
	for _, approveFirst := range []bool{false, true} {
		cn := newCheckNet(t)
		e, ctx := cn.e, context.Background()
		start := time.Now()
		first := cn.ask(cn.bobs, "root")
		id := checkID(t, cn, first.waitPending(t))
		e.restart()
		<-first.done // the connection was cut: the agent holds the login and asks again
		first.cancel()
		if first.err == nil {
			t.Fatalf("the check across the restart ended with %+v, want a connection error", first.v)
		}
		info, err := e.s.PendingCheck(ctx, id)
		if err != nil || info.User.ID != cn.bob.ID || info.LocalUser != "root" || info.DstNode.Name != "server" {
			t.Fatalf("PendingCheck after the restart: %+v, %v", info, err)
		}
		e.reconnect(t, cn.server)
		if approveFirst {
			if err := e.s.CompleteCheck(ctx, id, cn.bob.ID, AuthPassword); err != nil {
				t.Fatal(err)
			}
			again := askAgain(cn.server, cn.bobs, "root", time.Since(start))
			if v := again.final(t); v.Verdict != controlws.CheckAccept {
				t.Fatalf("asking again after approval during the outage: %+v, want accept", v)
			}
			if len(again.pending) != 0 {
				t.Errorf("a pending verdict before the accept: %+v", <-again.pending)
			}
			continue
		}
		again := askAgain(cn.server, cn.bobs, "root", time.Since(start))
		if p := again.waitPending(t); p.URL != "" {
			t.Fatalf("asking again after the restart: pending with URL %q, want the same check (no new URL)", p.URL)
		}
		// A login held only since the restart is another login: it gets its own check.
		fresh := askAgain(cn.server, cn.bobs, "root", 0)
		if freshID := checkID(t, cn, fresh.waitPending(t)); freshID == id {
			t.Fatalf("a new login got the check of the login held across the restart")
		}
		e.s.flows.mu.Lock()
		n := len(e.s.flows.checks)
		e.s.flows.mu.Unlock()
		if n != 2 {
			t.Fatalf("%d checks waited on, want 2 (the one asked again, the new login's)", n)
		}
		if err := e.s.CompleteCheck(ctx, id, cn.bob.ID, AuthPassword); err != nil {
			t.Fatalf("approving the URL shown before the restart: %v", err)
		}
		if v := again.final(t); v.Verdict != controlws.CheckAccept {
			t.Fatalf("after approval: %+v, want accept", v)
		}
		if _, err := e.s.PendingCheck(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("PendingCheck after the accept: %v, want ErrNotFound", err)
		}
		select {
		case <-fresh.done:
			t.Errorf("the new login's check ended with the other one: %+v %v", fresh.v, fresh.err)
		default:
		}
		fresh.cancel()
		<-fresh.done
	}
}

// TestLoginSurvivesRestart: a login URL shown before control restarts still works after it:
// the node, which registered again meanwhile (and got another URL), is registered to the user
// who signed in at the first one, and its register is answered.
func TestLoginSurvivesRestart(t *testing.T) {
	e := newEnv(t, nil)
	bob := e.user("bob@example.com")
	ctx := context.Background()
	m := e.newMachine()
	first := startLogin(m, "Bob's Laptop", false)
	id := first.url(t, e)
	e.restart()
	<-first.done
	if first.err == nil {
		t.Fatalf("the login across the restart ended with %+v, want a connection error", first.r)
	}
	if info, err := e.s.PendingLogin(ctx, id); err != nil || info.Hostname != "Bob's Laptop" {
		t.Fatalf("PendingLogin after the restart: %+v, %v", info, err)
	}
	m.c = e.dial(m.mk)
	again := startLogin(m, "Bob's Laptop", false)
	again.url(t, e)
	if err := e.s.CompleteLogin(ctx, id, bob.ID); err != nil {
		t.Fatalf("completing the URL shown before the restart: %v", err)
	}
	<-again.done
	if again.err != nil || again.r.Node.User != bob.ID || again.r.User.LoginName != "bob@example.com" {
		t.Fatalf("the node's register after the restart: %+v %v, want bob's node", again.r, again.err)
	}
	w := m.watch(t)
	w.waitFor(t, "the node's own map", func(nm *controlws.NetworkMap) bool { return nm.Self.ID == again.r.Node.ID })
	if _, err := e.s.PendingLogin(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("PendingLogin after completion: %v, want ErrNotFound", err)
	}
}
