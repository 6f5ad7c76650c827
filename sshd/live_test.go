//go:build linux

package sshd

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestLoginsAndEnd: Logins lists each logged-in connection (who, as whom, since when, its
// sessions and bytes), and End cuts exactly the one named, with the reason on its stderr.
func TestLoginsAndEnd(t *testing.T) {
	e := newEnv(t, true)
	start := time.Now()
	ended := e.mustDial(t)
	s, stderr, _ := startWithBackgroundJob(t, ended, false, "sleep 1000 & echo $!; wait")

	otherNC, err := e.ln.dial(netip.MustParseAddrPort("100.64.0.9:40000"))
	if err != nil {
		t.Fatal(err)
	}
	oc, chans, reqs, err := ssh.NewClientConn(otherNC, "server", &ssh.ClientConfig{User: e.me.Username, HostKeyCallback: e.hostKeyCallback()})
	if err != nil {
		t.Fatal(err)
	}
	kept := ssh.NewClient(oc, chans, reqs)
	defer kept.Close()

	logins := e.srv.Logins()
	if len(logins) != 2 {
		t.Fatalf("Logins = %+v, want 2", logins)
	}
	var first LiveLogin
	for _, l := range logins {
		if l.Remote.Addr() == netip.MustParseAddr("100.64.0.5") {
			first = l
		}
	}
	if first.LocalUser != e.me.Username || first.Sessions != 1 || first.Started.Before(start.Add(-time.Second)) || first.BytesIn == 0 || first.BytesOut == 0 {
		t.Errorf("the first login as listed: %+v", first)
	}

	if e.srv.End(netip.MustParseAddrPort("100.64.0.77:1"), "nobody") {
		t.Error("End of an address with no login reported true")
	}
	if !e.srv.End(first.Remote, "Session ended by admin@example.com.") {
		t.Fatal("End of a live login reported false")
	}
	s.Wait()
	if !strings.Contains(stderr.String(), "Session ended by admin@example.com.") {
		t.Errorf("stderr %q lacks the reason", stderr.String())
	}
	if got := e.srv.Logins(); len(got) != 1 || got[0].Remote.Addr() != netip.MustParseAddr("100.64.0.9") {
		t.Errorf("after End, Logins = %+v, want only the other", got)
	}
	if out, _, code := run(t, kept, "echo still here", nil); out != "still here\n" || code != 0 {
		t.Errorf("the other login: %q, %d", out, code)
	}
}
