package sshd

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/crypto/ssh"
)

// agentListener is a forwarded SSH agent's socket on this machine: a unix socket (0600)
// in a fresh directory (0700), both owned by the session's user, so only that user (and
// root) can reach the client's agent. Each connection to it opens an
// "auth-agent@openssh.com" channel back to the client.
type agentListener struct {
	dir, path string
	ln        *net.UnixListener
	wg        sync.WaitGroup
}

func listenAgent(acct *account, c *conn) (*agentListener, error) {
	dir, err := os.MkdirTemp("", "tsconnect-agent-")
	if err != nil {
		return nil, fmt.Errorf("agent forwarding: %w", err)
	}
	a := &agentListener{dir: dir, path: filepath.Join(dir, "agent.sock")}
	fail := func(err error) (*agentListener, error) {
		if a.ln != nil {
			a.ln.Close()
		}
		os.RemoveAll(dir)
		return nil, fmt.Errorf("agent forwarding: %w", err)
	}
	if a.ln, err = net.ListenUnix("unix", &net.UnixAddr{Name: a.path, Net: "unix"}); err != nil {
		return fail(err)
	}
	if err := os.Chmod(a.path, 0o600); err != nil {
		return fail(err)
	}
	if os.Geteuid() == 0 {
		for _, p := range []string{a.path, dir} {
			if err := os.Lchown(p, int(acct.UID), int(acct.GID)); err != nil {
				return fail(err)
			}
		}
	}
	a.wg.Add(1)
	go a.serve(c)
	return a, nil
}

func (a *agentListener) serve(c *conn) {
	defer a.wg.Done()
	for {
		uc, err := a.ln.AcceptUnix()
		if err != nil {
			return
		}
		c.mu.Lock()
		sconn := c.sconn
		c.mu.Unlock()
		ch, reqs, err := sconn.OpenChannel("auth-agent@openssh.com", nil)
		if err != nil {
			uc.Close()
			continue
		}
		go ssh.DiscardRequests(reqs)
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			pipe(uc, ch)
		}()
	}
}

// close removes the socket and its directory; open agent connections end when the
// client's channels close with the connection.
func (a *agentListener) close() {
	a.ln.Close()
	os.RemoveAll(a.dir)
}

// pipe copies both ways between a local connection and a channel until either side ends,
// then closes both.
func pipe(nc net.Conn, ch ssh.Channel) {
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(ch, nc)
		ch.CloseWrite()
		done <- struct{}{}
	}()
	go func() {
		io.Copy(nc, ch)
		if cw, ok := nc.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		done <- struct{}{}
	}()
	<-done
	<-done
	nc.Close()
	ch.Close()
}
