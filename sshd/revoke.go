package sshd

import (
	"net/netip"
	"sync"
)

// Revoke ends every live login for which keep returns false: each session's client gets
// reason on stderr (e.g. "Access revoked."), the session's whole process session gets
// SIGHUP, then SIGKILL after a grace period (background jobs too), the session reports how
// its process ended and its channel closes; then the connection closes. keep sees every
// authenticated connection's remote address and login and must not modify the login.
// Revoke returns once those connections are closed.
func (s *Server) Revoke(keep func(remote netip.AddrPort, l *Login) bool, reason string) {
	var wg sync.WaitGroup
	for _, c := range s.authenticated() {
		if keep(c.remote, c.login) {
			continue
		}
		s.logf("sshd: login verdict=revoke remote=%s source=%q local_user=%q rule=%q",
			c.remote, c.login.Source, c.login.LocalUser, c.login.Rule)
		wg.Go(func() { c.end(reason) })
	}
	wg.Wait()
}
