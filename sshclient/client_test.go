package sshclient

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"tsconnect/internal/leakcheck"
	"tsconnect/internal/sshtest"
	"tsconnect/internal/tcptest"
)

// output collects what a session delivers through a callback.
type output struct {
	mu   sync.Mutex
	buf  strings.Builder
	more chan struct{}
}

func newOutput() *output { return &output{more: make(chan struct{}, 1)} }

func (o *output) add(p []byte) {
	o.mu.Lock()
	o.buf.Write(p)
	o.mu.Unlock()
	select {
	case o.more <- struct{}{}:
	default:
	}
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// waitFor blocks until the output contains want.
func (o *output) waitFor(t *testing.T, want string) {
	t.Helper()
	for !strings.Contains(o.String(), want) {
		<-o.more
	}
}

func TestShell(t *testing.T) {
	leakcheck.Check(t)
	srv := sshtest.New(t)
	srv.Banner = "Welcome to the test host\n"
	out := newOutput()
	var banners []string
	s, err := Dial(context.Background(), srv.Pipe(), "alice", Options{
		HostKeys: []string{"", sshtest.AuthorizedKey(srv.Signer) + " comment"},
		Rows:     30, Cols: 100,
		OnBanner: func(b string) { banners = append(banners, b) },
		OnData:   out.add,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(banners) != 1 || banners[0] != srv.Banner {
		t.Errorf("banners = %q, want [%q]", banners, srv.Banner)
	}
	term, rows, cols := srv.PTY()
	if term != "xterm-256color" || rows != 30 || cols != 100 {
		t.Errorf("pty-req = %q %dx%d, want xterm-256color 30x100", term, rows, cols)
	}

	if _, err := s.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "hello\r\n")

	if err := s.Resize(40, 120); err != nil {
		t.Fatal(err)
	}
	if got := <-srv.Resizes; got != [2]int{40, 120} {
		t.Errorf("window-change = %v, want [40 120]", got)
	}

	s.Write([]byte("exit 3\n"))
	code, err := s.Wait()
	if code != 3 || err != nil {
		t.Errorf("Wait = %d, %v; want 3, nil", code, err)
	}
}

func TestHostKeyMismatch(t *testing.T) {
	leakcheck.Check(t)
	srv := sshtest.New(t)
	other := sshtest.AuthorizedKey(sshtest.Signer(t, 1))
	_, err := Dial(context.Background(), srv.Pipe(), "alice", Options{HostKeys: []string{other}})
	if !errors.Is(err, ErrHostKeyMismatch) {
		t.Fatalf("Dial with the wrong pinned key: err = %v, want host key mismatch", err)
	}
	if !strings.Contains(err.Error(), "host key mismatch") || !strings.Contains(err.Error(), ssh.FingerprintSHA256(srv.Signer.PublicKey())) {
		t.Errorf("error %q should say host key mismatch and name the presented key", err)
	}
	srv.Wait()
	if n := srv.Sessions(); n != 0 {
		t.Errorf("server saw %d sessions, want 0", n)
	}
}

func TestNoHostKeysRefused(t *testing.T) {
	srv := sshtest.New(t)
	for _, keys := range [][]string{nil, {" "}} {
		_, err := Dial(context.Background(), srv.Pipe(), "alice", Options{HostKeys: keys})
		if !errors.Is(err, ErrNoHostKeys) {
			t.Errorf("Dial with HostKeys %q: err = %v, want ErrNoHostKeys", keys, err)
		}
	}
	if _, err := Dial(context.Background(), srv.Pipe(), "alice", Options{HostKeys: []string{"ssh-ed25519 garbage"}}); err == nil || !strings.Contains(err.Error(), "host key 0") {
		t.Errorf("Dial with an unparsable key: err = %v, want it named", err)
	}
}

func TestCommandExitCodeAndStderr(t *testing.T) {
	leakcheck.Check(t)
	srv := sshtest.New(t)
	keys := []string{sshtest.AuthorizedKey(srv.Signer)}

	s, err := Dial(context.Background(), srv.Pipe(), "bob", Options{HostKeys: keys, Command: "exit 42"})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := s.Wait(); code != 42 || err != nil {
		t.Errorf("exit 42: Wait = %d, %v", code, err)
	}
	s.Close()

	stdout, stderr := newOutput(), newOutput()
	s, err = Dial(context.Background(), srv.Pipe(), "bob", Options{HostKeys: keys, Command: "stderr oops", OnData: stdout.add, OnStderr: stderr.add})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := s.Wait(); code != 0 || err != nil {
		t.Errorf("stderr: Wait = %d, %v", code, err)
	}
	if stdout.String() != "out" || stderr.String() != "oops" {
		t.Errorf("stdout %q, stderr %q; want out, oops", stdout, stderr)
	}
	s.Close()
}

func TestConnectionLostHasNoExitCode(t *testing.T) {
	leakcheck.Check(t)
	srv := sshtest.New(t)
	s, err := Dial(context.Background(), srv.Pipe(), "alice", Options{HostKeys: []string{sshtest.AuthorizedKey(srv.Signer)}})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	code, err := s.Wait()
	if code != -1 || err == nil {
		t.Errorf("Wait after Close = %d, %v; want -1 and an error", code, err)
	}
}

func TestChaChaPreferred(t *testing.T) {
	if Ciphers[0] != ssh.CipherChaCha20Poly1305 {
		t.Errorf("Ciphers[0] = %s, want chacha20-poly1305@openssh.com", Ciphers[0])
	}
	// A server that allows nothing else still gets a session.
	srv := sshtest.New(t)
	srv.Ciphers = []string{ssh.CipherChaCha20Poly1305}
	s, err := Dial(context.Background(), srv.Pipe(), "alice", Options{HostKeys: []string{sshtest.AuthorizedKey(srv.Signer)}, Command: "exit 0"})
	if err != nil {
		t.Fatal(err)
	}
	s.Wait()
	s.Close()
}

func TestCanceledContext(t *testing.T) {
	srv := sshtest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Dial(ctx, srv.Pipe(), "alice", Options{HostKeys: []string{sshtest.AuthorizedKey(srv.Signer)}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Dial with a canceled context: err = %v", err)
	}
}

func TestTerminalCommand(t *testing.T) {
	leakcheck.Check(t)
	srv := sshtest.New(t)
	keys := []string{sshtest.AuthorizedKey(srv.Signer)}
	s, err := Dial(context.Background(), srv.Pipe(), "alice", Options{HostKeys: keys, Rows: 33, Cols: 99, TerminalCommand: "exit 7"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	code, err := s.Wait()
	if code != 7 || err != nil {
		t.Errorf("Wait = %d, %v; want 7, nil (the command ran, not a shell)", code, err)
	}
	if term, rows, cols := srv.PTY(); term != "xterm-256color" || rows != 33 || cols != 99 {
		t.Errorf("pty-req = %q %dx%d, want a PTY of 33x99 for the command", term, rows, cols)
	}
}

func TestBadCommandRefused(t *testing.T) {
	srv := sshtest.New(t)
	keys := []string{sshtest.AuthorizedKey(srv.Signer)}
	for _, o := range []Options{
		{HostKeys: keys, TerminalCommand: strings.Repeat("x", MaxCommandLen+1)},
		{HostKeys: keys, Command: "echo a\x00b"},
	} {
		_, err := Dial(context.Background(), srv.Pipe(), "alice", o)
		if !errors.Is(err, ErrBadCommand) {
			t.Errorf("Dial with a bad command: err = %v, want ErrBadCommand", err)
		}
	}
	srv.Wait()
	if n := srv.Sessions(); n != 0 {
		t.Errorf("server saw %d sessions for refused commands, want 0", n)
	}
}

func TestKeepAliveEndsADeadConnection(t *testing.T) {
	leakcheck.Check(t)
	srv := sshtest.New(t)
	nc := &tcptest.MutedConn{Conn: srv.Pipe()}
	s, err := Dial(context.Background(), nc, "alice", Options{HostKeys: []string{sshtest.AuthorizedKey(srv.Signer)}, KeepAlive: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Alive: keepalives are answered, the session goes on.
	time.Sleep(100 * time.Millisecond)
	if _, err := s.Write([]byte("still here\n")); err != nil {
		t.Fatalf("session ended while the server answered keepalives: %v", err)
	}
	nc.Mute.Store(true)
	code, err := s.Wait()
	if code != -1 || !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("Wait on a dead path = %d, %v; want -1, ErrNoAnswer", code, err)
	}
}
