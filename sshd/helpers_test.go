//go:build linux

package sshd

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/user"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/crypto/ssh"

	"tsconnect/internal/leakcheck"
	"tsconnect/sshd/sshdtest"
)

// testEnv is a Server on a listener plus what the tests check against.
type testEnv struct {
	srv  *Server
	addr string // dial address
	me   *user.User
	ln   *pipeListener // non-nil when serving on in-memory pipes

	mu      sync.Mutex
	logs    *sshdtest.Logs
	remotes []netip.AddrPort // what Authorize saw
}

// newEnv starts a server that lets the current user log in as themself and refuses every
// other user with a banner naming the rule that is missing.
func newEnv(t testing.TB, overPipes bool, opts ...func(*Server)) *testEnv {
	t.Helper()
	leakcheck.Check(t)
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := LoadOrCreateHostKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{me: me, logs: sshdtest.NewLogs(t)}
	e.srv = &Server{
		HostKeys: keys,
		Authorize: func(ctx context.Context, req AuthRequest) (*Login, error) {
			remote, u := req.Remote(), req.User()
			e.mu.Lock()
			e.remotes = append(e.remotes, remote)
			e.mu.Unlock()
			src := "alice@example.com on laptop (" + remote.Addr().String() + ")"
			if u != me.Username {
				return &Login{Source: src}, fmt.Errorf("tsconnect: no SSH rule lets alice@example.com log in as %q", u)
			}
			return &Login{LocalUser: me.Username, Source: src, Rule: "ssh[0]"}, nil
		},
		Logf: e.logs.Logf,
	}
	for _, o := range opts {
		o(e.srv)
	}
	var ln net.Listener
	if overPipes {
		e.ln = newPipeListener(netip.MustParseAddrPort("100.64.0.1:22"))
		ln = e.ln
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		e.addr = ln.Addr().String()
	}
	sshdtest.ServeOn(t, e.srv, ln)
	return e
}

func (e *testEnv) logged(substr string) bool { return e.logs.Contains(substr) }

// hostKeyCallback pins the server's host keys (any of them: clients pick the algorithm).
func (e *testEnv) hostKeyCallback() ssh.HostKeyCallback {
	return sshdtest.PinKeys(e.srv.HostKeys)
}

// dial logs in as user; from is the client's overlay address when serving on pipes.
func (e *testEnv) dial(t testing.TB, user string, banner *string) (*ssh.Client, error) {
	t.Helper()
	var nc net.Conn
	var err error
	if e.ln != nil {
		nc, err = e.ln.dial(netip.MustParseAddrPort("100.64.0.5:51234"))
	} else {
		nc, err = net.Dial("tcp", e.addr)
	}
	if err != nil {
		return nil, err
	}
	client, err := sshdtest.Client(nc, user, e.srv.HostKeys, func(msg string) {
		if banner != nil {
			*banner += msg
		}
	})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { client.Close() })
	return client, nil
}

func (e *testEnv) mustDial(t testing.TB) *ssh.Client {
	t.Helper()
	c, err := e.dial(t, e.me.Username, nil)
	if err != nil {
		t.Fatalf("login as %s: %v", e.me.Username, err)
	}
	return c
}

// pipeListener hands out in-memory connections (a kernel socket pair) whose addresses
// look like the overlay's, as a netstack listener's would.
type pipeListener struct {
	local  netip.AddrPort
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener(local netip.AddrPort) *pipeListener {
	return &pipeListener{local: local, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return net.TCPAddrFromAddrPort(l.local) }

// dial returns the client end of a new connection coming from remote.
func (l *pipeListener) dial(remote netip.AddrPort) (net.Conn, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	mk := func(fd int, name string) (net.Conn, error) {
		f := os.NewFile(uintptr(fd), name)
		defer f.Close()
		return net.FileConn(f)
	}
	a, err := mk(fds[0], "client")
	if err != nil {
		syscall.Close(fds[1])
		return nil, err
	}
	b, err := mk(fds[1], "server")
	if err != nil {
		a.Close()
		return nil, err
	}
	server := &addrConn{Conn: b, local: net.TCPAddrFromAddrPort(l.local), remote: net.TCPAddrFromAddrPort(remote)}
	select {
	case l.conns <- server:
		return &addrConn{Conn: a, local: server.remote, remote: server.local}, nil
	case <-l.closed:
		a.Close()
		b.Close()
		return nil, net.ErrClosed
	}
}

type addrConn struct {
	net.Conn
	local, remote net.Addr
}

func (c *addrConn) LocalAddr() net.Addr  { return c.local }
func (c *addrConn) RemoteAddr() net.Addr { return c.remote }

// processGone reports whether pid has exited (a zombie left to an init that does not reap counts as gone).
func processGone(pid int) bool {
	_, state, ok := procSession(pid)
	return !ok || state == 'Z' || state == 'X'
}
