package sshtest

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// dial connects an x/crypto/ssh client over nc, pinned to s's host key.
func dial(t *testing.T, s *Server, nc net.Conn) *ssh.Client {
	t.Helper()
	c, chans, reqs, err := ssh.NewClientConn(nc, "test", &ssh.ClientConfig{User: "u", HostKeyCallback: ssh.FixedHostKey(s.Signer.PublicKey())})
	if err != nil {
		t.Fatal(err)
	}
	cl := ssh.NewClient(c, chans, reqs)
	t.Cleanup(func() { cl.Close() })
	return cl
}

func TestShellEchoesAndExits(t *testing.T) {
	s := New(t)
	cl := dial(t, s, s.Pipe())
	se, err := cl.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := se.RequestPty("vt100", 24, 80, nil); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	se.Stdout, se.Stdin = &out, strings.NewReader("hello\nexit 7\n")
	if err := se.Shell(); err != nil {
		t.Fatal(err)
	}
	err = se.Wait()
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 7 {
		t.Fatalf("Wait = %v, want exit status 7", err)
	}
	if out.String() != "hello\r\n" {
		t.Errorf("shell output %q, want the echoed line", out.String())
	}
	if term, rows, cols := s.PTY(); term != "vt100" || rows != 24 || cols != 80 {
		t.Errorf("PTY() = %q %dx%d, want vt100 24x80", term, rows, cols)
	}
	if n := s.Sessions(); n != 1 {
		t.Errorf("Sessions() = %d, want 1", n)
	}
}

func TestExecOverLoopback(t *testing.T) {
	s := New(t)
	nc, err := net.Dial("tcp", s.Listen())
	if err != nil {
		t.Fatal(err)
	}
	cl := dial(t, s, nc)
	for cmd, want := range map[string]int{"exit 3": 3, "stderr x": 0, "rm -rf /": 127} {
		se, err := cl.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		se.Stderr = &stderr
		out, err := se.Output(cmd)
		code := 0
		var ee *ssh.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitStatus()
		} else if err != nil {
			t.Fatalf("%q: %v", cmd, err)
		}
		if code != want {
			t.Errorf("%q exited %d, want %d", cmd, code, want)
		}
		if cmd == "stderr x" && (string(out) != "out" || stderr.String() != "x") {
			t.Errorf("%q: stdout %q, stderr %q; want out, x", cmd, out, stderr.String())
		}
	}
}
