package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"tsconnect/controlws"
	"tsconnect/internal/flowcredit"
	"tsconnect/sshclient"
)

// DialTimeout bounds connecting to a peer's port 22 through the overlay.
const DialTimeout = 20 * time.Second

// SSHOptions are the page's options and callbacks for one session. Each callback, if
// non-nil, is called from a Go goroutine and must not call back into Go synchronously.
type SSHOptions struct {
	Rows, Cols int
	// Command, if non-empty, runs in the PTY instead of the login shell (as `ssh -t host
	// cmd`); at most sshclient.MaxCommandLen bytes.
	Command string
	// OnData receives terminal output; the slice is valid only during the call.
	OnData func(p []byte)
	// OutputWindow, if > 0, is flow control: OnData is not given more than this many bytes
	// that the page has not acknowledged with SSHSession.Ack (one chunk larger than the window
	// passes when nothing is unacknowledged). While the window is full the session stops
	// reading the SSH channel, and the remote blocks once the channel's window is used up.
	OutputWindow int
	// OnWritten, if non-nil, makes writes flow-controlled: it is told n each time n bytes given
	// to SSHSession.Write went to the connection (the page's send credit), and the page may
	// have at most OutputWindow+MaxWriteChunk bytes written but not yet reported; more fails
	// the session with bad_request.
	OnWritten func(n int)
	// OnBanner receives each authentication banner as it arrives (a held check-mode login
	// sends one with the URL to re-authenticate at), as text: which of its links a page may
	// act on is decided in one place, by the npm package (npm/src/banner.ts), with the
	// browser's own URL parser.
	OnBanner func(text string)
	// OnProgress receives human-readable connection steps.
	OnProgress func(text string)
	// OnConnected is called once the shell runs.
	OnConnected func()
	// OnDone is called exactly once at the end: with the exit code, or with -1 and why
	// the session failed or ended without one.
	OnDone func(exitCode int, err error)
}

// SSHSession is a session as the page holds it: Write, Resize and Close never block, and
// may be called before the connection is up (writes are queued, the last size is used).
type SSHSession struct {
	ctx     context.Context
	cancel  context.CancelFunc
	out     *flowcredit.Credit // nil without OutputWindow
	mu      sync.Mutex
	pending [][]byte
	wake    chan struct{} // cap 1: pending or size changed
	rows    int
	cols    int
	resized bool
	closed  bool
	eof     bool               // CloseWrite once pending is written
	conn    *sshclient.Session // while connected: file transfer opens its channels here

	onWritten func(n int) // SSHOptions.OnWritten
	queued    int         // bytes in pending, bounded when onWritten is set
	failed    error       // why the page's own use ended the session
}

// SSH starts a session to user@host (a peer name or overlay address) and returns at once;
// progress and the outcome arrive through opts' callbacks.
func (p *IPN) SSH(host, user string, opts SSHOptions) *SSHSession {
	return p.session(p.ctx, opts, func(s *SSHSession, o SSHOptions) (int, error) { return p.runSSH(s, host, user, o) })
}

// OpenSFTP starts an "sftp" subsystem channel on the connection of session s (as its user) and
// returns it as a session of its own: Write, Ack and Close as for a terminal (Rows, Cols and
// Command are ignored), OnData the server's bytes. The file wasm speaks SFTP over it; ending
// it leaves s running, and s's end ends it.
func (p *IPN) OpenSFTP(s *SSHSession, opts SSHOptions) *SSHSession {
	return p.session(s.ctx, opts, func(c *SSHSession, o SSHOptions) (int, error) {
		s.mu.Lock()
		conn := s.conn
		s.mu.Unlock()
		if conn == nil {
			return -1, withCode(CodeNotStarted, errors.New("the session is not connected"))
		}
		sub, err := conn.Subsystem("sftp", o.OnData)
		if err != nil {
			return -1, withCode(CodeSSHFailed, err)
		}
		defer sub.Close()
		stop := context.AfterFunc(c.ctx, func() { sub.Close() })
		defer stop()
		go c.pump(sub.Write, sub.Resize, nil)
		return sub.Wait()
	})
}

// session runs run in a goroutine for a new session under parent and returns it at once.
func (p *IPN) session(parent context.Context, opts SSHOptions, run func(*SSHSession, SSHOptions) (int, error)) *SSHSession {
	ctx, cancel := context.WithCancel(parent)
	s := &SSHSession{ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1), rows: opts.Rows, cols: opts.Cols, onWritten: opts.OnWritten}
	if opts.OutputWindow > 0 && opts.OnData != nil {
		s.out = flowcredit.New(opts.OutputWindow)
		onData := opts.OnData
		opts.OnData = func(b []byte) {
			if s.out.Acquire(ctx, len(b)) {
				onData(b)
			}
		}
	}
	p.goSafe(func() {
		code, err := run(s, opts)
		cancel()
		s.mu.Lock()
		if s.failed != nil {
			code, err = -1, s.failed
		}
		s.mu.Unlock()
		if err != nil {
			p.logf("ssh: %v", err)
		}
		if opts.OnDone != nil {
			opts.OnDone(code, err)
		}
	})
	return s
}

func (p *IPN) runSSH(s *SSHSession, host, user string, o SSHOptions) (int, error) {
	progress := func(format string, args ...any) {
		if o.OnProgress != nil {
			o.OnProgress(fmt.Sprintf(format, args...))
		}
	}
	progress("Joining the network…")
	eng, err := p.running(s.ctx)
	if err != nil {
		return -1, err
	}
	peer, addr, err := lookupPeer(eng.NetMap(), host)
	if err != nil {
		return -1, err
	}
	progress("Connecting to %s (%s)…", peer.Name, addr.Addr())
	dctx, dcancel := context.WithTimeout(s.ctx, DialTimeout)
	nc, err := eng.Dial(dctx, "tcp", addr.String())
	dcancel()
	if err != nil {
		if s.ctx.Err() != nil {
			return -1, withCode(CodeClosed, errors.New("session closed while connecting"))
		}
		return -1, withCode(CodeHostUnreachable, fmt.Errorf("host unreachable: %s (%s): %w", peer.Name, addr, err))
	}

	progress("Starting SSH as %s…", user)
	rows, cols := s.size()
	sess, err := sshclient.Dial(s.ctx, nc, user, sshclient.Options{
		HostKeys: peer.SSHHostKeys,
		Rows:     rows, Cols: cols,
		TerminalCommand: o.Command,
		OnBanner:        o.OnBanner,
		OnData:          o.OnData,
		Logf:            p.logf,
	})
	if err != nil {
		switch code := errorCode(err); code {
		case CodeHostKeyMismatch, CodeNoHostKey:
			return -1, withCode(code, err)
		}
		if s.ctx.Err() != nil {
			return -1, withCode(CodeClosed, errors.New("session closed while connecting"))
		}
		return -1, withCode(CodeSSHFailed, err)
	}
	defer sess.Close()
	s.mu.Lock()
	s.conn = sess
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.conn = nil
		s.mu.Unlock()
	}()
	if o.OnConnected != nil {
		o.OnConnected()
	}
	stop := context.AfterFunc(s.ctx, func() { sess.Close() })
	defer stop()
	go s.pump(sess.Write, sess.Resize, nil)
	code, err := sess.Wait()
	if err != nil {
		if s.ctx.Err() != nil {
			return -1, withCode(CodeClosed, errors.New("session closed"))
		}
		if errors.Is(err, sshclient.ErrKilled) {
			return -1, withCode(CodeSessionKilled, err)
		}
		return -1, withCode(CodeSessionLost, err)
	}
	return code, nil
}

// lookupPeer finds host (a peer name, name.domain or overlay address) in nm and returns it
// with the address of its SSH server (IPv4 preferred).
func lookupPeer(nm *controlws.NetworkMap, host string) (controlws.Node, netip.AddrPort, error) {
	peer, err := findPeer(nm, host)
	if err != nil {
		return peer, netip.AddrPort{}, err
	}
	if !peer.SSH {
		return peer, netip.AddrPort{}, withCode(CodeNoSSH, fmt.Errorf("%s does not run tsconnect SSH", peer.Name))
	}
	if len(peer.SSHHostKeys) == 0 {
		return peer, netip.AddrPort{}, withCode(CodeNoHostKey, fmt.Errorf("%s has published no SSH host key to pin", peer.Name))
	}
	addr, err := overlayAddr(peer)
	return peer, netip.AddrPortFrom(addr, 22), err
}

// findPeer finds host (a peer name, name.domain or overlay address) in nm.
func findPeer(nm *controlws.NetworkMap, host string) (controlws.Node, error) {
	if nm == nil {
		return controlws.Node{}, withCode(CodeNotStarted, errors.New("no network map yet"))
	}
	peer, ok := nm.PeerByName(host)
	if ip, err := netip.ParseAddr(host); err == nil {
		peer, ok = nm.PeerByAddr(ip)
	}
	if !ok {
		return controlws.Node{}, withCode(CodeUnknownHost, fmt.Errorf("%q is not a peer in this network (or policy hides it from this node)", host))
	}
	return peer, nil
}

// overlayAddr is the address to dial peer at (IPv4 preferred).
func overlayAddr(peer controlws.Node) (netip.Addr, error) {
	var addr netip.Addr
	for _, pfx := range peer.Addresses {
		if !addr.IsValid() || (pfx.Addr().Is4() && !addr.Is4()) {
			addr = pfx.Addr()
		}
	}
	if !addr.IsValid() {
		return addr, withCode(CodeHostUnreachable, fmt.Errorf("%s has no overlay address", peer.Name))
	}
	return addr, nil
}

// Write queues p (copied) for the remote's standard input (a stream's peer).
func (s *SSHSession) Write(p []byte) {
	s.mu.Lock()
	over := false
	if !s.closed && !s.eof {
		s.pending = append(s.pending, append([]byte(nil), p...))
		s.queued += len(p)
		over = s.onWritten != nil && s.queued > OutputWindow+MaxWriteChunk
	}
	s.mu.Unlock()
	if over {
		s.fail(withCode(controlws.CodeBadRequest, fmt.Errorf("write: more than %d bytes sent ahead of the write credit", OutputWindow+MaxWriteChunk)))
		return
	}
	s.poke()
}

// CloseWrite ends the remote's input once what was written has gone (a stream's half-close).
func (s *SSHSession) CloseWrite() {
	s.mu.Lock()
	s.eof = true
	s.mu.Unlock()
	s.poke()
}

// fail ends the session with err, the page's misuse.
func (s *SSHSession) fail(err error) {
	s.mu.Lock()
	if s.failed == nil {
		s.failed = err
	}
	s.mu.Unlock()
	s.Close()
}

// Resize records the terminal size and tells the server once connected.
func (s *SSHSession) Resize(rows, cols int) {
	s.mu.Lock()
	s.rows, s.cols, s.resized = rows, cols, true
	s.mu.Unlock()
	s.poke()
}

// Ack returns n bytes of output credit (SSHOptions.OutputWindow): the page is done with them.
func (s *SSHSession) Ack(n int) {
	if s.out != nil {
		s.out.Release(n)
	}
}

// Close ends the session; OnDone follows.
func (s *SSHSession) Close() {
	s.mu.Lock()
	s.closed = true
	s.pending = nil
	s.mu.Unlock()
	s.cancel()
}

func (s *SSHSession) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *SSHSession) size() (rows, cols int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resized = false
	return s.rows, s.cols
}

// pump moves queued writes, resizes and the end of input to the connection (an SSH session
// or a TCP connection; resize and closeWrite may be nil) until the session ends. It runs in
// its own goroutine because write blocks on flow control. (Funcs, not interfaces: an
// interface call keeps every method of that name in the wasm.)
func (s *SSHSession) pump(write func([]byte) (int, error), resize func(rows, cols int) error, closeWrite func() error) {
	s.poke() // writes queued while connecting
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		}
		s.mu.Lock()
		batch := s.pending
		s.pending = nil
		resized, rows, cols, eof := s.resized, s.rows, s.cols, s.eof
		s.resized = false
		s.mu.Unlock()
		if resize != nil && resized {
			resize(rows, cols)
		}
		for _, b := range batch {
			if _, err := write(b); err != nil {
				return
			}
			s.mu.Lock()
			s.queued -= len(b)
			s.mu.Unlock()
			if s.onWritten != nil {
				s.onWritten(len(b))
			}
		}
		if eof && len(batch) == 0 {
			if closeWrite != nil {
				closeWrite()
			}
			return
		}
		if eof {
			s.poke() // the batch is written; end the input next round
		}
	}
}
