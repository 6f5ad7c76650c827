//go:build linux

package sshd

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// run executes cmd without a terminal and returns stdout, stderr and the exit status.
func run(t *testing.T, c *ssh.Client, cmd string, stdin []byte) (string, string, int) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr = &out, &errb
	if stdin != nil {
		s.Stdin = bytes.NewReader(stdin)
	}
	err = s.Run(cmd)
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return out.String(), errb.String(), 0
	case errors.As(err, &ee) && ee.Signal() == "":
		return out.String(), errb.String(), ee.ExitStatus()
	default:
		t.Fatalf("run %q: %v (stderr %q)", cmd, err, errb.String())
		return "", "", -1
	}
}

func TestExecExitStatus(t *testing.T) {
	e := newEnv(t, false)
	c := e.mustDial(t)
	for cmd, want := range map[string]int{"exit 42": 42, "true": 0, "false": 1} {
		if _, _, got := run(t, c, cmd, nil); got != want {
			t.Errorf("%q: exit status %d, want %d", cmd, got, want)
		}
	}
}

func TestExecMissingCommand(t *testing.T) {
	e := newEnv(t, false)
	c := e.mustDial(t)
	_, stderr, code := run(t, c, "no-such-command-tsconnect", nil)
	if code != 127 || !strings.Contains(stderr, "not found") {
		t.Errorf("exit %d, stderr %q; want 127 and a 'not found' message", code, stderr)
	}
}

func TestExecCatByteExact(t *testing.T) {
	e := newEnv(t, false)
	c := e.mustDial(t)
	in := make([]byte, 1<<20)
	rand.Read(in)
	out, stderr, code := run(t, c, "cat", in) // ends only if the client's EOF reaches cat
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if !bytes.Equal([]byte(out), in) {
		t.Fatalf("cat returned %d bytes that differ from the %d sent", len(out), len(in))
	}
}

func TestExecStderrSeparate(t *testing.T) {
	e := newEnv(t, false)
	c := e.mustDial(t)
	out, stderr, code := run(t, c, "echo to-out; echo to-err >&2; exit 3", nil)
	if out != "to-out\n" || stderr != "to-err\n" || code != 3 {
		t.Errorf("stdout %q, stderr %q, exit %d; want \"to-out\\n\", \"to-err\\n\", 3", out, stderr, code)
	}
}

func TestExecExitSignal(t *testing.T) {
	e := newEnv(t, false)
	c := e.mustDial(t)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Run("kill -TERM $$")
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.Signal() != "TERM" {
		t.Fatalf("Run: %v; want exit-signal TERM", err)
	}
}

// Over in-memory pipes with overlay-looking addresses, as the netstack listener gives them.
func TestEnvironment(t *testing.T) {
	t.Setenv("TSCONNECT_AGENT_SECRET", "must-not-leak")
	e := newEnv(t, true)
	c := e.mustDial(t)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Setenv("LANG", "C.UTF-8"); err != nil {
		t.Errorf("env LANG refused: %v", err)
	}
	if err := s.Setenv("LC_TIME", "C"); err != nil {
		t.Errorf("env LC_TIME refused: %v", err)
	}
	if err := s.Setenv("LD_PRELOAD", "/evil.so"); err == nil {
		t.Error("env LD_PRELOAD accepted")
	}
	out, err := s.Output("env; echo cwd=$(pwd)")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			env[k] = v
		}
	}
	want := map[string]string{
		"SSH_CONNECTION": "100.64.0.5 51234 100.64.0.1 22",
		"SSH_CLIENT":     "100.64.0.5 51234 22",
		"USER":           e.me.Username,
		"LOGNAME":        e.me.Username,
		"HOME":           e.me.HomeDir,
		"SHELL":          passwdShell(e.me.Username),
		"LANG":           "C.UTF-8",
		"LC_TIME":        "C",
		"cwd":            e.me.HomeDir,
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
	for _, k := range []string{"TSCONNECT_AGENT_SECRET", "LD_PRELOAD", "SSH_TTY"} {
		if v, ok := env[k]; ok {
			t.Errorf("%s=%q is set", k, v)
		}
	}
	if !strings.Contains(env["PATH"], "/usr/bin") {
		t.Errorf("PATH=%q lacks /usr/bin", env["PATH"])
	}
	if len(e.remotes) == 0 || e.remotes[0].String() != "100.64.0.5:51234" {
		t.Errorf("Authorize saw remotes %v, want 100.64.0.5:51234", e.remotes)
	}
}

// terminal is a PTY session driven like a person at a keyboard.
type terminal struct {
	t   *testing.T
	s   *ssh.Session
	in  io.WriteCloser
	out *bufio.Reader
	err bytes.Buffer
}

func openTerminal(t *testing.T, c *ssh.Client, rows, cols int) *terminal {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	tm := &terminal{t: t, s: s}
	s.Stderr = &tm.err
	if tm.in, err = s.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	r, err := s.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	tm.out = bufio.NewReader(r)
	if err := s.RequestPty("xterm-256color", rows, cols, ssh.TerminalModes{ssh.ECHO: 0}); err != nil {
		t.Fatal(err)
	}
	return tm
}

func (tm *terminal) send(line string) {
	tm.t.Helper()
	if _, err := io.WriteString(tm.in, line+"\n"); err != nil {
		tm.t.Fatal(err)
	}
}

// expect reads output until a line matches re and returns its submatches.
func (tm *terminal) expect(re string) []string {
	tm.t.Helper()
	rx := regexp.MustCompile(re)
	var seen strings.Builder
	for {
		line, err := tm.out.ReadString('\n')
		seen.WriteString(line)
		if m := rx.FindStringSubmatch(line); m != nil {
			return m
		}
		if err != nil {
			tm.t.Fatalf("output ended (%v) before %q; got %q", err, re, seen.String())
		}
	}
}

func TestPTYShell(t *testing.T) {
	e := newEnv(t, false)
	c := e.mustDial(t)
	tm := openTerminal(t, c, 40, 100)
	if err := tm.s.Shell(); err != nil {
		t.Fatal(err)
	}
	tm.send(`echo "size=$(stty size)"`)
	if m := tm.expect(`size=(\d+ \d+)`); m[1] != "40 100" {
		t.Errorf("stty size %q, want \"40 100\"", m[1])
	}
	if err := tm.s.WindowChange(50, 132); err != nil {
		t.Fatal(err)
	}
	tm.send(`echo "size=$(stty size)"`)
	if m := tm.expect(`size=(\d+ \d+)`); m[1] != "50 132" {
		t.Errorf("after window-change stty size %q, want \"50 132\"", m[1])
	}
	tm.send(`echo "argv0=$0 term=$TERM tty=$SSH_TTY realtty=$(tty)"`)
	m := tm.expect(`argv0=(\S+) term=(\S+) tty=(\S+) realtty=(\S+)`)
	if !strings.HasPrefix(m[1], "-") || m[2] != "xterm-256color" || m[3] != m[4] || !strings.HasPrefix(m[3], "/dev/pts/") {
		t.Errorf("argv0=%s TERM=%s SSH_TTY=%s tty=%s; want a login shell, xterm-256color, matching /dev/pts/N", m[1], m[2], m[3], m[4])
	}
	tm.send("exit 7")
	var ee *ssh.ExitError
	if err := tm.s.Wait(); !errors.As(err, &ee) || ee.ExitStatus() != 7 {
		t.Errorf("shell ended with %v, want exit status 7", err)
	}
}

func TestExecWithPTY(t *testing.T) {
	e := newEnv(t, false)
	c := e.mustDial(t)
	tm := openTerminal(t, c, 24, 80)
	if err := tm.s.Start("tty; stty size; stty -a; exit 3"); err != nil {
		t.Fatal(err)
	}
	tm.expect(`^/dev/pts/\d+\r\n$`)
	tm.expect(`^24 80\r\n$`)      // ONLCR on: the terminal turns \n into \r\n
	tm.expect(`(^| )-echo( |\r)`) // the client's terminal modes were applied
	var ee *ssh.ExitError
	if err := tm.s.Wait(); !errors.As(err, &ee) || ee.ExitStatus() != 3 {
		t.Errorf("exec ended with %v, want exit status 3", err)
	}
}

func TestRefusedRequests(t *testing.T) {
	e := newEnv(t, false)
	c := e.mustDial(t)
	if _, err := c.Dial("tcp", "127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "administratively prohibited") {
		t.Errorf("port forwarding: %v, want administratively prohibited", err)
	}
	if _, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
		t.Error("remote forwarding accepted")
	}
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestSubsystem("sftp"); err == nil {
		t.Error("sftp subsystem accepted")
	}
	// The connection still works after the refusals.
	if out, _, code := run(t, c, "echo ok", nil); out != "ok\n" || code != 0 {
		t.Errorf("after refusals: %q, %d", out, code)
	}
}

// BenchmarkExecCat measures bulk throughput of one session: SSH over loopback TCP, pipes
// to cat and back (32 MiB per op).
func BenchmarkExecCat(b *testing.B) {
	e := newEnv(b, false)
	c := e.mustDial(b)
	chunk := make([]byte, 1<<20)
	rand.Read(chunk)
	const size = 32 << 20
	b.SetBytes(size)
	for b.Loop() {
		s, err := c.NewSession()
		if err != nil {
			b.Fatal(err)
		}
		in, _ := s.StdinPipe()
		out, _ := s.StdoutPipe()
		if err := s.Start("cat"); err != nil {
			b.Fatal(err)
		}
		go func() {
			for range size / len(chunk) {
				in.Write(chunk)
			}
			in.Close()
		}()
		n, _ := io.Copy(io.Discard, out)
		if err := s.Wait(); err != nil || n != size {
			b.Fatalf("cat: %v, %d bytes back", err, n)
		}
		s.Close()
	}
}
