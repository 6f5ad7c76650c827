package sshd

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"tsconnect/internal/sshalive"
)

// conn is one client connection, from handshake to close.
type conn struct {
	srv           *Server
	nc            net.Conn
	remote, local netip.AddrPort

	counted *countingConn // nc, counting its bytes

	mu       sync.Mutex
	sconn    *ssh.ServerConn // set once authenticated
	login    *Login          // set as soon as the login is accepted
	since    time.Time       // when the login was accepted
	ending   bool            // revoked or server closing: no new sessions
	sessions map[*session]struct{}
	wg       sync.WaitGroup // session and forwarding goroutines
	fwd      remoteForwards
	localFwd int // open -L channels
	// authTimer ends the handshake (and Authorize's context) at its deadline;
	// AuthRequest.Extend resets it.
	authTimer *time.Timer
}

// loggedIn reports whether c has an accepted login and is not ending.
func (c *conn) loggedIn() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.login != nil && !c.ending
}

// setLogin records the accepted login and returns it (nil if p carries none).
func (c *conn) setLogin(p *ssh.Permissions) *Login {
	l, err := loginFromPermissions(p)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	c.login = l
	c.since = time.Now()
	c.mu.Unlock()
	return l
}

// clearLogin forgets a login revoked before the handshake completed.
func (c *conn) clearLogin() {
	c.mu.Lock()
	c.login = nil
	c.mu.Unlock()
}

func (c *conn) serve(ctx context.Context) {
	defer c.nc.Close()
	c.nc.SetDeadline(time.Now().Add(handshakeTimeout))
	// Authorize gives up with the handshake: when it times out, or the client hangs up.
	actx, cancel := context.WithCancelCause(ctx)
	c.mu.Lock()
	c.authTimer = time.AfterFunc(handshakeTimeout, func() { cancel(errHandshakeTimeout) })
	c.mu.Unlock()
	hc := &hangupConn{Conn: c.nc, gone: cancel}
	sconn, chans, reqs, err := ssh.NewServerConn(hc, c.srv.authConfig(actx, c))
	c.mu.Lock()
	c.authTimer.Stop()
	c.mu.Unlock()
	cancel(nil)
	if err != nil {
		return // refusals are logged by the auth callback; others are scanners or hang-ups
	}
	c.nc.SetDeadline(time.Time{})
	c.mu.Lock()
	c.sconn = sconn
	ok := c.login != nil && !c.ending
	c.mu.Unlock()
	if !ok { // revoked during the handshake
		sconn.Close()
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.globalRequests(reqs)
	}()
	if every := c.srv.keepAlive(); every > 0 {
		c.wg.Go(func() {
			sshalive.Watch(sconn, every, func() {
				c.srv.logf("sshd: connection lost remote=%s reason=%q", c.remote, fmt.Sprintf("no answer to a keepalive in %v", 2*every))
				c.nc.Close()
			})
		})
	}
	for nch := range chans {
		switch nch.ChannelType() {
		case "session":
			c.openSession(nch)
		case "direct-tcpip":
			c.localForward(nch)
		case "direct-streamlocal@openssh.com":
			nch.Reject(ssh.Prohibited, "unix socket forwarding is not supported")
		default:
			nch.Reject(ssh.UnknownChannelType, "unsupported channel type "+nch.ChannelType())
		}
	}
	c.wg.Wait()
}

func (c *conn) openSession(nch ssh.NewChannel) {
	c.mu.Lock()
	ending := c.ending
	c.mu.Unlock()
	if ending {
		nch.Reject(ssh.Prohibited, "access revoked")
		return
	}
	c.mu.Lock()
	n := len(c.sessions)
	c.mu.Unlock()
	if n >= MaxSessions {
		c.refuseRequest("session", fmt.Errorf("%d sessions open on this connection, the most allowed", n))
		nch.Reject(ssh.ResourceShortage, fmt.Sprintf("too many sessions on this connection (at most %d)", MaxSessions))
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	s := newSession(c, ch)
	c.mu.Lock()
	if c.ending { // ended while accepting
		c.mu.Unlock()
		ch.Close()
		go ssh.DiscardRequests(reqs)
		return
	}
	c.sessions[s] = struct{}{}
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		s.serve(reqs)
		c.mu.Lock()
		delete(c.sessions, s)
		c.mu.Unlock()
	}()
}

// end ends every session of c, telling each client reason on stderr when non-empty,
// then closes the connection.
func (c *conn) end(reason string) {
	c.mu.Lock()
	c.ending = true
	sessions := make([]*session, 0, len(c.sessions))
	for s := range c.sessions {
		sessions = append(sessions, s)
	}
	sconn := c.sconn
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Go(func() { s.end(reason) })
	}
	wg.Wait()
	if sconn != nil {
		sconn.Close()
	}
	c.nc.Close()
}

// keepAlive is the interval at which s asks its clients whether they are there (0: never).
func (s *Server) keepAlive() time.Duration {
	switch {
	case s.KeepAlive < 0:
		return 0
	case s.KeepAlive == 0:
		return DefaultKeepAlive
	}
	return s.KeepAlive
}
