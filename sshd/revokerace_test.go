//go:build linux

package sshd

import (
	"net/netip"
	"strings"
	"sync"
	"testing"
)

// TestRevokeBetweenDecideAndRecordIsNotMissed is the race of issue 12 item 13: a Revoke
// that runs after Authorize read the rules but before the login is recorded must still
// end that login. The seam runs the Revoke exactly there.
func TestRevokeBetweenDecideAndRecordIsNotMissed(t *testing.T) {
	e := newEnv(t, false)
	var once sync.Once
	seen := 0
	e.srv.afterDecide = func() {
		once.Do(func() {
			e.srv.Revoke(func(netip.AddrPort, *Login) bool { seen++; return false }, "Access revoked.")
		})
	}
	var banner string
	c, err := e.dial(t, e.me.Username, &banner)
	if err == nil {
		s, serr := c.NewSession()
		if serr == nil {
			out, _ := s.CombinedOutput("echo still-in")
			t.Fatalf("login revoked while it was decided went on; a session ran: %q", out)
		}
		t.Fatalf("login revoked while it was decided was accepted")
	}
	if seen != 1 || !strings.Contains(banner, "Access revoked.") {
		t.Errorf("keep judged the login %d times; banner %q; want once, and the banner saying Access revoked.", seen, banner)
	}
	if !e.logged("revoked while deciding") {
		t.Error("no log line for the login revoked while deciding")
	}
	// A Revoke that keeps the login, or one that ran before the decision, refuses nothing.
	e.srv.afterDecide = func() {
		e.srv.Revoke(func(netip.AddrPort, *Login) bool { return true }, "Access revoked.")
	}
	e.mustDial(t)
	e.srv.afterDecide = nil
	e.mustDial(t)
}
