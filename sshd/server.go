// Package sshd is the agent's in-process SSH server: logins are authorized by the peer's
// overlay identity (never keys), and sessions run shells and commands on PTYs or pipes.
package sshd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// DefaultVersion is the SSH version string announced when Server.Version is empty.
const DefaultVersion = "SSH-2.0-tsconnect"

// handshakeTimeout bounds key exchange plus authentication, so idle pre-auth connections
// do not pile up. It includes the time Authorize takes to decide.
const handshakeTimeout = 2 * time.Minute

// DefaultKeepAlive is Server.KeepAlive's default: a vanished client is cut off within 45 s.
const DefaultKeepAlive = 15 * time.Second

// Server serves SSH on listeners it is given. The zero value refuses every login; set
// HostKeys and Authorize before calling Serve.
type Server struct {
	// HostKeys identify this server; at least one is required.
	HostKeys []ssh.Signer
	// Authorize decides the login req (who connects from where, as whom). A returned
	// error is shown to the client as an auth banner (its text) before "Permission denied";
	// a Login returned together with an error only enriches the log line. It may call
	// req.Banner and req.Extend while deciding; ctx ends when the server closes, the client
	// hangs up (context.Cause is then ErrClientGone) or the handshake times out (2 minutes,
	// or as req.Extend set). Required; nil refuses everything.
	Authorize func(ctx context.Context, req AuthRequest) (*Login, error)
	// Logf, if non-nil, receives one line per login verdict, session start and end.
	Logf func(format string, args ...any)
	// Version is the SSH version string; empty means DefaultVersion.
	Version string
	// SFTPServer is the argv of a program that serves SFTP on its stdin and stdout (such
	// as ServeSFTP behind a hidden subcommand); it runs as the logged-in user, like any
	// session process. Nil refuses the "sftp" subsystem.
	SFTPServer []string
	// Record, if non-nil, is asked before every shell and exec session starts (with or
	// without a terminal; SFTP subsystems are never recorded) for the recording its
	// output goes to; nil, nil records nothing. An error refuses the session: the client
	// sees its text on stderr and exit status 1. ctx ends when the server closes.
	Record func(ctx context.Context, req RecordRequest) (Recording, error)
	// KeepAlive is how often the server asks a logged-in client whether it is still there
	// (keepalive@openssh.com, as OpenSSH's ClientAliveInterval); a client with no answer
	// for two intervals is cut off and its sessions hang up, so a command whose client's
	// machine vanished does not run on unseen. Zero means DefaultKeepAlive; negative turns
	// keepalives off.
	KeepAlive time.Duration
	// Audit, if non-nil, is called with every login decision: each verdict, each login cut
	// by Revoke or End, each session refused for its recording and each session's end. It
	// must not block for long (it runs on the connection's goroutine).
	Audit func(Decision)

	// afterDecide, if non-nil, runs between Authorize's verdict and the login being
	// recorded (tests of the revocation race).
	afterDecide func()
	revoked     revocations

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	ctx       context.Context // canceled by Close
	cancel    context.CancelFunc
	wg        sync.WaitGroup // connection goroutines
}

func (s *Server) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

func (s *Server) init() {
	if s.ctx == nil {
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.listeners = make(map[net.Listener]struct{})
		s.conns = make(map[*conn]struct{})
	}
}

// Serve accepts connections on ln until Close (it then returns net.ErrClosed) or until
// Accept fails. Serve may run on several listeners at once; Close closes them all.
func (s *Server) Serve(ln net.Listener) error {
	if len(s.HostKeys) == 0 {
		return errors.New("sshd: Server.HostKeys is empty")
	}
	s.mu.Lock()
	s.init()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return net.ErrClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return net.ErrClosed
			}
			return fmt.Errorf("sshd: accept: %w", err)
		}
		counted := &countingConn{Conn: nc}
		c := &conn{srv: s, nc: counted, counted: counted, remote: addrPort(nc.RemoteAddr()), local: addrPort(nc.LocalAddr()),
			sessions: make(map[*session]struct{})}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return net.ErrClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve(s.ctx)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Close stops every Serve, ends all sessions (their processes get SIGHUP, then SIGKILL),
// closes all connections and returns once every connection goroutine has finished.
func (s *Server) Close() error {
	s.mu.Lock()
	s.init()
	s.closed = true
	s.cancel()
	for ln := range s.listeners {
		ln.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() { c.end("") })
	}
	wg.Wait()
	s.wg.Wait()
	return nil
}

// authenticated returns the connections that completed authentication.
func (s *Server) authenticated() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*conn
	for c := range s.conns {
		if c.loggedIn() {
			out = append(out, c)
		}
	}
	return out
}
