//go:build linux

package sshd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// within fails t when f does not return within d (a hang).
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: no answer within %v", what, d)
	}
}

// request sends a session request and returns the server's answer.
func request(t *testing.T, s *ssh.Session, name string, payload any) bool {
	t.Helper()
	var ok bool
	var err error
	var b []byte
	if payload != nil {
		b = ssh.Marshal(payload)
	}
	within(t, 10*time.Second, name, func() { ok, err = s.SendRequest(name, true, b) })
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ok
}

type envReq struct{ Name, Value string }
type execReq struct{ Command string }

// TestHostileSessionRequests: env names and values that are huge, carry NULs or LD_*, too
// many variables, huge or NUL exec and subsystem strings, huge terminal types and modes:
// each is refused (and logged naming the problem), the session still works, nothing hangs.
func TestHostileSessionRequests(t *testing.T) {
	e := newEnv(t, false, func(s *Server) {
		auth := s.Authorize
		s.Authorize = func(ctx context.Context, req AuthRequest) (*Login, error) {
			l, err := auth(ctx, req)
			if l != nil {
				l.AcceptEnv = []string{"*"}
			}
			return l, err
		}
	})
	c := e.mustDial(t)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		name string
		kv   envReq
		log  string
	}{
		{"NUL in name", envReq{"A\x00B", "x"}, ""},
		{"NUL in value", envReq{"TSC_NUL", "a\x00b"}, ""},
		{"LD_PRELOAD", envReq{"LD_PRELOAD", "/tmp/x.so"}, ""},
		{"huge name", envReq{strings.Repeat("N", MaxEnvNameLen+1), "x"}, "more than 256"},
		{"huge value", envReq{"TSC_BIG", strings.Repeat("v", MaxEnvValueLen+1)}, "more than 32768"},
		{"empty name", envReq{"", "x"}, ""},
		{"= in name", envReq{"A=B", "x"}, ""},
	} {
		if request(t, s, "env", r.kv) {
			t.Errorf("env %s accepted", r.name)
		}
		if r.log != "" && !e.logged(r.log) {
			t.Errorf("env %s: no log line naming %q", r.name, r.log)
		}
	}
	for i := range MaxEnvVars {
		if !request(t, s, "env", envReq{fmt.Sprintf("TSC_V%d", i), "1"}) {
			t.Fatalf("env var %d (within the bound) refused", i)
		}
	}
	if request(t, s, "env", envReq{"TSC_ONE_TOO_MANY", "1"}) || !e.logged("more than 64 variables") {
		t.Error("env var past MaxEnvVars accepted, or not logged")
	}
	for _, r := range []struct {
		name    string
		payload any
		log     string
	}{
		{"exec with a NUL", execReq{"echo a\x00rm -rf ~"}, "NUL byte at byte 6"},
		{"exec too long", execReq{strings.Repeat("x", MaxCommandLen+1)}, "more than 131072"},
		{"subsystem huge", execReq{strings.Repeat("s", 100_000)}, "more than 64"},
		{"subsystem NUL", execReq{"sftp\x00"}, "control byte 0x00"},
		{"subsystem unknown", execReq{"netconf"}, `unknown subsystem \"netconf\"`},
	} {
		kind := "exec"
		if strings.HasPrefix(r.name, "subsystem") {
			kind = "subsystem"
		}
		if request(t, s, kind, r.payload) {
			t.Fatalf("%s accepted", r.name)
		}
		if !e.logged(r.log) {
			t.Errorf("%s: no log line naming %q", r.name, r.log)
		}
	}
	if request(t, s, "pty-req", ptyRequest{Term: strings.Repeat("x", MaxTermLen+1), Cols: 80, Rows: 24}) {
		t.Error("pty-req with a huge terminal type accepted")
	}
	if request(t, s, "pty-req", ptyRequest{Term: "xterm\x1b]0;pwned\x07", Cols: 80, Rows: 24}) {
		t.Error("pty-req with escapes in the terminal type accepted")
	}
	if request(t, s, "pty-req", ptyRequest{Term: "xterm", Cols: 80, Rows: 24, Modes: strings.Repeat("\x01\x00\x00\x00\x03", 1000)}) {
		t.Error("pty-req with 5000 bytes of modes accepted")
	}
	// After all that, the same session still runs a command with the accepted variables.
	var out []byte
	within(t, 10*time.Second, "exec after the hostile requests", func() { out, err = s.Output("echo $TSC_V0$TSC_V63") })
	if err != nil || strings.TrimSpace(string(out)) != "11" {
		t.Fatalf("exec after hostile requests: %q, %v", out, err)
	}
	// And the server still serves another connection.
	mustRun(t, e.mustDial(t), "true")
}

// TestHostileTerminalModesAndSizes: every opcode (defined, undefined, speeds, 0 ending the
// list early) with extreme values, and window sizes 0, 65535 and 2^32-1: the terminal
// works, its size clamped to what a terminal can hold.
func TestHostileTerminalModesAndSizes(t *testing.T) {
	e := newEnv(t, false)
	c := e.mustDial(t)
	var modes []byte
	for op := 1; op < 256; op++ {
		if op == 53 || op == 51 { // keep ECHO and ICANON as they are, so the shell reads lines
			continue
		}
		modes = append(modes, byte(op))
		modes = binary.BigEndian.AppendUint32(modes, 0xffffffff)
	}
	for _, size := range []struct{ cols, rows uint32 }{{0, 0}, {65535, 65535}, {1<<32 - 1, 1<<32 - 1}} {
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		if !request(t, s, "pty-req", ptyRequest{Term: "xterm", Cols: size.cols, Rows: size.rows, Modes: string(modes)}) {
			t.Fatalf("pty-req %dx%d with every opcode refused", size.cols, size.rows)
		}
		if !request(t, s, "window-change", windowChange{Cols: size.cols, Rows: size.rows, WPx: 1<<32 - 1, HPx: 0}) {
			t.Errorf("window-change %dx%d refused", size.cols, size.rows)
		}
		var out []byte
		within(t, 10*time.Second, "stty size", func() { out, err = s.Output("stty size") })
		want := fmt.Sprintf("%d %d", min(size.rows, 65535), min(size.cols, 65535))
		if err != nil || !strings.Contains(string(out), want) {
			t.Errorf("size %dx%d: stty size = %q (%v), want %q", size.cols, size.rows, out, err, want)
		}
	}
}

// TestHostileForwardingRequests: -L to port 0, 65536, hosts with a NUL, escapes or 100 KB,
// -R on odd addresses and ports and past MaxRemoteForwards, sessions past MaxSessions,
// repeated agent-forward requests: refused with a message naming the problem.
func TestHostileForwardingRequests(t *testing.T) {
	e := mappedEnv(t, func(l *Login) { l.GrantAcceptDefaults() })
	c, err := e.dial(t, e.me.Username, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct {
		dst  directTCPIP
		want string
	}{
		{directTCPIP{DestAddr: "127.0.0.1", DestPort: 0}, "port 0 is not in 1-65535"},
		{directTCPIP{DestAddr: "127.0.0.1", DestPort: 65536}, "port 65536 is not in 1-65535"},
		{directTCPIP{DestAddr: "127.0.0.1", DestPort: 1<<32 - 1}, "port 4294967295"},
		{directTCPIP{DestAddr: "localhost\x00.evil", DestPort: 22}, "control byte 0x00"},
		{directTCPIP{DestAddr: "\x1b[2J", DestPort: 22}, "control byte 0x1b"},
		{directTCPIP{DestAddr: strings.Repeat("h", 100_000), DestPort: 22}, "more than 255"},
		{directTCPIP{DestAddr: "", DestPort: 22}, "empty"},
	} {
		var err error
		within(t, 10*time.Second, "direct-tcpip", func() {
			var ch ssh.Channel
			ch, _, err = c.OpenChannel("direct-tcpip", ssh.Marshal(d.dst))
			if err == nil {
				ch.Close()
			}
		})
		var oe *ssh.OpenChannelError
		if !errors.As(err, &oe) || !strings.Contains(oe.Message, d.want) {
			t.Errorf("direct-tcpip to %q:%d: %v; want a refusal naming %q", safeShort(d.dst.DestAddr), d.dst.DestPort, err, d.want)
		}
	}
	for _, f := range []tcpipForward{
		{BindAddr: "127.0.0.1", BindPort: 65536},
		{BindAddr: "127.0.0.1\x00", BindPort: 0},
		{BindAddr: strings.Repeat("a", 100_000), BindPort: 0},
	} {
		var ok bool
		within(t, 10*time.Second, "tcpip-forward", func() { ok, _, _ = c.SendRequest("tcpip-forward", true, ssh.Marshal(f)) })
		if ok {
			t.Errorf("tcpip-forward %q:%d accepted", safeShort(f.BindAddr), f.BindPort)
		}
	}
	for i := range MaxRemoteForwards + 1 {
		ok, _, _ := c.SendRequest("tcpip-forward", true, ssh.Marshal(tcpipForward{BindAddr: "127.0.0.1", BindPort: freePort(t)}))
		if ok != (i < MaxRemoteForwards) {
			t.Errorf("remote forward %d: accepted=%v, want %v (bound %d)", i, ok, i < MaxRemoteForwards, MaxRemoteForwards)
		}
	}
	var sessions []*ssh.Session
	for i := range MaxSessions {
		s, err := c.NewSession()
		if err != nil {
			t.Fatalf("session %d (within the bound): %v", i, err)
		}
		sessions = append(sessions, s)
	}
	if _, err := c.NewSession(); err == nil || !strings.Contains(err.Error(), "too many sessions on this connection (at most 10)") {
		t.Errorf("session past MaxSessions: %v", err)
	}
	for range 20 {
		request(t, sessions[0], "auth-agent-req@openssh.com", nil)
	}
	for _, s := range sessions {
		s.Close()
	}
	mustRun(t, e.mustDial(t), "true")
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) uint32 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint32(ln.Addr().(*net.TCPAddr).Port)
}

func safeShort(s string) string { return fmt.Sprintf("%.20q", s) }

func mustRun(t *testing.T, c *ssh.Client, cmd string) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	within(t, 10*time.Second, cmd, func() { err = s.Run(cmd) })
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
}
