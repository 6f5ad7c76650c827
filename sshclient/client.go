package sshclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"tsconnect/internal/sshalive"
)

// Options configure Dial. The zero value of each field means its default.
type Options struct {
	// HostKeys are the target's host public keys in authorized_keys form, as the network
	// map publishes them. The server must present one of them; an empty list fails Dial.
	HostKeys []string
	// Rows and Cols size the PTY; defaults 24 and 80.
	Rows, Cols int
	// Term is the TERM of the PTY; default "xterm-256color".
	Term string
	// Command, if non-empty, is run without a PTY; otherwise a login shell gets a PTY.
	Command string
	// TerminalCommand, if non-empty (and Command is empty), is run in the PTY instead of the
	// login shell, as `ssh -t host cmd` does (for example `tmux new -A -s main`). At most
	// MaxCommandLen bytes, without NUL bytes.
	TerminalCommand string
	// OnBanner, if non-nil, is called with each authentication banner and keyboard-interactive
	// instruction the server sends (for example a check-mode login URL).
	OnBanner func(text string)
	// OnData, if non-nil, is called with each chunk of the remote's standard output, in order.
	// The slice is valid only during the call.
	OnData func(p []byte)
	// OnStderr, if non-nil, is called with standard error output; if nil, stderr goes to OnData.
	OnStderr func(p []byte)
	// Logf, if non-nil, logs connection events. Terminal data is never logged.
	Logf func(format string, args ...any)
	// KeepAlive is how often the client asks the server whether it is still there
	// (keepalive@openssh.com); a connection with no answer for two intervals is closed, so a
	// dead path (a peer gone, a laptop that slept) ends the session instead of hanging it.
	// Zero means DefaultKeepAlive; negative turns keepalives off.
	KeepAlive time.Duration
}

// DefaultKeepAlive is Options.KeepAlive's default: a dead connection ends within 45 s.
const DefaultKeepAlive = 15 * time.Second

// ErrKilled is wrapped by Wait's error when the server ended the remote process with a
// signal (its exit-signal): the server meant the session to end (a revocation, an admin's
// End), unlike a connection that was lost.
var ErrKilled = errors.New("remote process killed by signal")

// ErrNoAnswer is wrapped by Wait's error when the connection was closed because the server
// answered no keepalive.
var ErrNoAnswer = errors.New("connection lost: the server stopped answering")

// MaxCommandLen bounds Options.Command and Options.TerminalCommand.
const MaxCommandLen = 4096

// ErrBadCommand is wrapped by the error of a command that is too long or holds a NUL byte.
var ErrBadCommand = errors.New("bad command")

// CheckCommand says why cmd cannot be sent as a command, or nil.
func CheckCommand(cmd string) error {
	switch {
	case len(cmd) > MaxCommandLen:
		return fmt.Errorf("%w: %d bytes, more than %d", ErrBadCommand, len(cmd), MaxCommandLen)
	case strings.IndexByte(cmd, 0) >= 0:
		return fmt.Errorf("%w: it holds a NUL byte", ErrBadCommand)
	}
	return nil
}

// Ciphers is the client's cipher preference: ChaCha20-Poly1305 first, because in wasm it
// runs about three times faster than AES-GCM, then the library's other secure ciphers.
var Ciphers = preferChaCha(ssh.SupportedAlgorithms().Ciphers)

func preferChaCha(supported []string) []string {
	out := []string{ssh.CipherChaCha20Poly1305}
	for _, c := range supported {
		if c != ssh.CipherChaCha20Poly1305 {
			out = append(out, c)
		}
	}
	return out
}

// Session is an SSH session running a shell or a command. Its methods are safe for
// concurrent use.
type Session struct {
	nc     net.Conn
	client *ssh.Client
	sess   *ssh.Session
	stdin  io.WriteCloser
	pty    bool
	// subDone is closed when a subsystem channel (Subsystem) ends; its end is not the connection's.
	subDone chan struct{}
	logf    func(string, ...any)

	lost     atomic.Bool // closed by keepAlive: the server stopped answering
	waitOnce sync.Once
	code     int
	err      error
}

// Dial runs the SSH handshake over nc as user, verifies the host key against
// opts.HostKeys, and starts a PTY shell (or opts.Command). Canceling ctx aborts the
// handshake; once Dial returns, ctx no longer matters. On error nc is closed.
func Dial(ctx context.Context, nc net.Conn, user string, opts Options) (*Session, error) {
	s, err := dial(ctx, nc, user, opts)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return s, nil
}

func dial(ctx context.Context, nc net.Conn, user string, opts Options) (*Session, error) {
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	keys, err := pinnedKeys(opts.HostKeys)
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %w", nc.RemoteAddr(), err)
	}
	if err := CheckCommand(opts.Command); err != nil {
		return nil, err
	}
	if err := CheckCommand(opts.TerminalCommand); err != nil {
		return nil, err
	}
	banner := func(string) {}
	if opts.OnBanner != nil {
		banner = opts.OnBanner
	}
	cfg := &ssh.ClientConfig{
		User:              user,
		HostKeyCallback:   pinCallback(keys),
		HostKeyAlgorithms: hostKeyAlgorithms(keys),
		BannerCallback: func(msg string) error {
			banner(msg)
			return nil
		},
		// The server authorizes by the overlay connection, so "none" (always tried first)
		// is what normally succeeds; keyboard-interactive carries check-mode instructions.
		Auth: []ssh.AuthMethod{ssh.KeyboardInteractive(func(name, instruction string, questions []string, echos []bool) ([]string, error) {
			if instruction != "" {
				banner(instruction)
			}
			return make([]string, len(questions)), nil
		})},
		Config:        ssh.Config{Ciphers: slices.Clone(Ciphers)},
		ClientVersion: "SSH-2.0-tsconnect",
	}

	stop := context.AfterFunc(ctx, func() { nc.Close() })
	addr := nc.RemoteAddr().String()
	conn, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
	if !stop() {
		if conn != nil {
			conn.Close()
		}
		return nil, fmt.Errorf("ssh %s: %w", addr, ctx.Err())
	}
	if err != nil {
		return nil, fmt.Errorf("ssh %s as %q: %w", addr, user, err)
	}
	client := ssh.NewClient(conn, chans, reqs)
	logf("sshclient: connected to %s as %q (server %q)", addr, user, conn.ServerVersion())

	s, err := start(client, opts)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("ssh %s as %q: %w", addr, user, err)
	}
	s.nc, s.logf = nc, logf
	if ka := opts.KeepAlive; ka >= 0 {
		if ka == 0 {
			ka = DefaultKeepAlive
		}
		go s.keepAlive(ka)
	}
	return s, nil
}

// keepAlive asks the server every interval whether it is there, and closes the connection
// when an answer takes longer than two intervals. It returns when the connection ends.
func (s *Session) keepAlive(every time.Duration) {
	sshalive.Watch(s.client, every, func() {
		s.lost.Store(true)
		s.logf("sshclient: no answer to a keepalive in %v: closing the connection", 2*every)
		s.nc.Close()
	})
}

func start(client *ssh.Client, opts Options) (*Session, error) {
	sess, err := client.NewSession()
	if err != nil {
		return nil, fmt.Errorf("open session: %w", err)
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		return nil, err
	}
	if opts.OnData != nil {
		sess.Stdout = callbackWriter(opts.OnData)
	}
	switch {
	case opts.OnStderr != nil:
		sess.Stderr = callbackWriter(opts.OnStderr)
	case opts.OnData != nil:
		sess.Stderr = callbackWriter(opts.OnData)
	}
	s := &Session{client: client, sess: sess, stdin: stdin}
	if opts.Command != "" {
		if err := sess.Start(opts.Command); err != nil {
			return nil, fmt.Errorf("start command: %w", err)
		}
		return s, nil
	}
	rows, cols, term := opts.Rows, opts.Cols, opts.Term
	if rows <= 0 {
		rows = 24
	}
	if cols <= 0 {
		cols = 80
	}
	if term == "" {
		term = "xterm-256color"
	}
	modes := ssh.TerminalModes{ssh.ECHO: 1, ssh.TTY_OP_ISPEED: 38400, ssh.TTY_OP_OSPEED: 38400}
	if err := sess.RequestPty(term, rows, cols, modes); err != nil {
		return nil, fmt.Errorf("request PTY: %w", err)
	}
	if opts.TerminalCommand != "" {
		if err := sess.Start(opts.TerminalCommand); err != nil {
			return nil, fmt.Errorf("start command: %w", err)
		}
	} else if err := sess.Shell(); err != nil {
		return nil, fmt.Errorf("start shell: %w", err)
	}
	s.pty = true
	return s, nil
}

// callbackWriter adapts an output callback to io.Writer.
type callbackWriter func([]byte)

func (f callbackWriter) Write(p []byte) (int, error) {
	f(p)
	return len(p), nil
}

// Write sends p to the remote's standard input. It blocks while the remote's window is
// full (flow control), so callers on an event loop queue writes in a goroutine.
func (s *Session) Write(p []byte) (int, error) {
	return s.stdin.Write(p)
}

// CloseWrite sends EOF on standard input.
func (s *Session) CloseWrite() error {
	return s.stdin.Close()
}

// Resize tells the server the terminal's new size. It is a no-op for a command without PTY.
func (s *Session) Resize(rows, cols int) error {
	if !s.pty || rows <= 0 || cols <= 0 {
		return nil
	}
	return s.sess.WindowChange(rows, cols)
}

// Close ends the session and the connection; Wait then returns.
func (s *Session) Close() error {
	if s.subDone != nil {
		return s.sess.Close()
	}
	s.sess.Close()
	err := s.client.Close()
	s.nc.Close()
	return err
}

// Wait waits until the remote shell or command exits and all its output has been
// delivered, and returns its exit status. A session that ends without an exit status
// (connection lost, killed by a signal, closed locally) returns -1 and an error saying so.
func (s *Session) Wait() (exitCode int, err error) {
	s.waitOnce.Do(func() {
		if s.subDone != nil {
			<-s.subDone
			return
		}
		s.code, s.err = exitStatus(s.sess.Wait())
		if s.err != nil && s.lost.Load() {
			s.err = ErrNoAnswer
		}
		s.client.Close()
		s.logf("sshclient: session ended: code %d, err %v", s.code, s.err)
	})
	return s.code, s.err
}

func exitStatus(err error) (int, error) {
	var exitErr *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exitErr) && exitErr.Signal() != "":
		return -1, fmt.Errorf("%w %s", ErrKilled, exitErr.Signal())
	case errors.As(err, &exitErr):
		return exitErr.ExitStatus(), nil
	case errors.As(err, &missing), errors.Is(err, io.EOF):
		return -1, errors.New("session ended without an exit status (connection closed)")
	default:
		return -1, fmt.Errorf("session: %w", err)
	}
}

// Subsystem starts subsystem name (such as "sftp") on another channel of s's connection, as
// the same user, its output to onData. Closing it, or its end, leaves s running; Wait
// returns 0 once the server ends the channel (an error if reading it failed).
func (s *Session) Subsystem(name string, onData func([]byte)) (*Session, error) {
	ch, err := s.client.NewSession()
	if err != nil {
		return nil, fmt.Errorf("open %s channel: %w", name, err)
	}
	stdin, err := ch.StdinPipe()
	if err != nil {
		ch.Close()
		return nil, err
	}
	stdout, err := ch.StdoutPipe()
	if err != nil {
		ch.Close()
		return nil, err
	}
	if err := ch.RequestSubsystem(name); err != nil {
		ch.Close()
		return nil, fmt.Errorf("start %s subsystem: %w", name, err)
	}
	sub := &Session{nc: s.nc, client: s.client, sess: ch, stdin: stdin, logf: s.logf, subDone: make(chan struct{})}
	go func() {
		// The subsystem is started by its request, not by Start: its output is read here.
		_, err := io.Copy(callbackWriter(onData), stdout)
		sub.code, sub.err = 0, err
		close(sub.subDone)
	}()
	return sub, nil
}
