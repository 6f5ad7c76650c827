//go:build linux

package sshd

import (
	"bufio"
	"bytes"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"tsconnect/internal/eventually"
	"tsconnect/internal/syncbuf"
	"tsconnect/internal/tcptest"
	"tsconnect/sshd/sshdtest"
)

// startWithBackgroundJob starts cmd, which prints the pid of a background job on its
// first line, and returns the session, its stderr and that pid.
func startWithBackgroundJob(t *testing.T, c *ssh.Client, tty bool, cmd string) (*ssh.Session, *syncbuf.Buffer, int) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	stderr := &syncbuf.Buffer{}
	s.Stderr = stderr
	out, err := s.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if tty {
		if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{ssh.ECHO: 0}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Start(cmd); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the background pid: %v (stderr %q)", err, stderr.String())
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || processGone(pid) {
		t.Fatalf("background job pid %q is not running (%v)", line, err)
	}
	go func() { bufio.NewReader(out).WriteTo(new(bytes.Buffer)) }() // keep draining
	return s, stderr, pid
}

func TestRevoke(t *testing.T) {
	for _, tc := range []struct {
		name string
		tty  bool
		cmd  string
	}{
		// Interactive job control puts the background job in its own process group.
		{"pty-jobcontrol", true, "set -m; sleep 1000 & echo $!; wait"},
		{"pipes", false, "sleep 1000 & echo $!; wait"},
		// A job that ignores SIGHUP is ended by SIGKILL after the grace period.
		{"ignores-hup", false, "(trap '' HUP; exec sleep 1000) & echo $!; wait"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, true)
			revoked := e.mustDial(t)
			s, stderr, bgPid := startWithBackgroundJob(t, revoked, tc.tty, tc.cmd)

			// A second login from elsewhere is kept.
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

			var seen []string
			e.srv.Revoke(func(remote netip.AddrPort, l *Login) bool {
				seen = append(seen, remote.String()+" "+l.LocalUser+" "+l.Rule)
				return remote.Addr() != netip.MustParseAddr("100.64.0.5")
			}, "Access revoked.")

			if len(seen) != 2 {
				t.Errorf("keep saw %v, want both logins", seen)
			}
			err = s.Wait()
			var ee *ssh.ExitError
			if !errors.As(err, &ee) || ee.Signal() == "" {
				t.Errorf("revoked session ended with %v, want an exit-signal", err)
			}
			if !strings.Contains(stderr.String(), "Access revoked.") {
				t.Errorf("stderr %q lacks the reason", stderr.String())
			}
			if !processGone(bgPid) {
				t.Errorf("background job %d still runs", bgPid)
			}
			if _, err := revoked.NewSession(); err == nil {
				t.Error("revoked connection still opens sessions")
			}
			if out, _, code := run(t, kept, "echo still here", nil); out != "still here\n" || code != 0 {
				t.Errorf("kept login: %q, %d", out, code)
			}
			if !e.logged("verdict=revoke remote=100.64.0.5:51234") {
				t.Errorf("no revoke line in %q", e.logs.Lines())
			}
		})
	}
}

func TestCloseEndsSessions(t *testing.T) {
	e := newEnv(t, false)
	c := e.mustDial(t)
	s, _, bgPid := startWithBackgroundJob(t, c, false, "sleep 1000 & echo $!; wait")
	e.srv.Close()
	if err := s.Wait(); err == nil {
		t.Error("session survived Close with a clean exit")
	}
	if !processGone(bgPid) {
		t.Errorf("background job %d still runs after Close", bgPid)
	}
}

// A client that goes away hangs up its session: the process gets SIGHUP.
func TestClientDisconnectHangsUp(t *testing.T) {
	e := newEnv(t, false)
	c := e.mustDial(t)
	_, _, pid := startWithBackgroundJob(t, c, true, "echo $$; exec sleep 1000")
	c.Close()
	eventually.True(t, "the session's process to end after the client left", func() bool { return processGone(pid) })
}

// A command that leaves a job holding its stdout still ends promptly with its own status;
// the job keeps running, as the user asked.
func TestBackgroundJobDoesNotHoldSession(t *testing.T) {
	e := newEnv(t, false)
	c := e.mustDial(t)
	out, _, code := run(t, c, "sleep 1000 & echo $!; exit 5", nil)
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || code != 5 {
		t.Fatalf("output %q, exit %d; want a pid and 5", out, code)
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	if processGone(pid) {
		t.Error("the background job was killed when the session ended normally")
	}
}

// A client that vanishes without a word (no FIN, no RST: its machine or its tunnel went
// away) stops answering keepalives; the server cuts it off and hangs up its sessions, even
// a command without a terminal that never writes.
func TestVanishedClientHangsUp(t *testing.T) {
	e := newEnv(t, true, func(s *Server) { s.KeepAlive = 50 * time.Millisecond })
	nc, err := e.ln.dial(netip.MustParseAddrPort("100.64.0.5:51234"))
	if err != nil {
		t.Fatal(err)
	}
	mc := &tcptest.MutedConn{Conn: nc}
	c, err := sshdtest.Client(mc, e.me.Username, e.srv.HostKeys, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_, _, pid := startWithBackgroundJob(t, c, false, "echo $$; exec sleep 1000")
	// Answered keepalives keep a quiet session alive.
	time.Sleep(300 * time.Millisecond)
	if processGone(pid) {
		t.Fatal("the session's process ended while its client answered keepalives")
	}
	mc.Mute.Store(true)
	eventually.True(t, "the vanished client's command to be hung up", func() bool { return processGone(pid) })
	if !e.logged(`connection lost remote=100.64.0.5:51234 reason="no answer to a keepalive in 100ms"`) {
		t.Errorf("no connection-lost line in %q", e.logs.Lines())
	}
}
