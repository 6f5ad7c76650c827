package sshd

import (
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

// LiveLogin is one logged-in SSH connection as the server sees it now.
type LiveLogin struct {
	Remote    netip.AddrPort // the client's address (on the overlay: its node)
	LocalUser string
	Source    string // who connects, as Login.Source
	Started   time.Time
	Sessions  int   // open session channels (shell, exec, sftp)
	BytesIn   int64 // from the client, SSH-encrypted as on the wire
	BytesOut  int64
}

// Logins lists the logged-in connections.
func (s *Server) Logins() []LiveLogin {
	var out []LiveLogin
	for _, c := range s.authenticated() {
		c.mu.Lock()
		if c.login == nil {
			c.mu.Unlock()
			continue
		}
		l := LiveLogin{Remote: c.remote, LocalUser: c.login.LocalUser, Source: c.login.Source, Started: c.since, Sessions: len(c.sessions)}
		c.mu.Unlock()
		l.BytesIn, l.BytesOut = c.counted.in.Load(), c.counted.out.Load()
		out = append(out, l)
	}
	return out
}

// End ends the logged-in connection from remote as Revoke ends one: its sessions' clients get
// reason on stderr, their processes SIGHUP (then SIGKILL), the connection closes. It reports
// whether there was such a connection.
func (s *Server) End(remote netip.AddrPort, reason string) bool {
	for _, c := range s.authenticated() {
		if c.remote == remote {
			s.logf("sshd: login ended remote=%s source=%q local_user=%q: %s", c.remote, c.login.Source, c.login.LocalUser, reason)
			s.audit(Decision{Kind: DecisionRevoke, Remote: c.remote, LocalUser: c.login.LocalUser, Rule: c.login.Rule, Reason: reason})
			c.end(reason)
			return true
		}
	}
	return false
}

// countingConn counts the bytes read from and written to a connection.
type countingConn struct {
	net.Conn
	in, out atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.Add(int64(n))
	return n, err
}
