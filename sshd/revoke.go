package sshd

import (
	"net/netip"
	"sync"
)

// revocations remembers the newest Revoke, so a login decided before it but recorded after
// it started is judged by it too (Authorize reads the rules, then the login is recorded;
// a Revoke in between would otherwise miss it).
type revocations struct {
	mu     sync.Mutex
	gen    uint64 // number of Revoke calls so far
	keep   func(remote netip.AddrPort, l *Login) bool
	reason string
}

// generation returns how many Revokes have started.
func (r *revocations) generation() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gen
}

// since returns the newest Revoke's keep and reason if one started after generation gen.
func (r *revocations) since(gen uint64) (func(netip.AddrPort, *Login) bool, string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.keep, r.reason, r.gen != gen
}

// Revoke ends every live login for which keep returns false: each session's client gets
// reason on stderr (e.g. "Access revoked."), the session's whole process session gets
// SIGHUP, then SIGKILL after a grace period (background jobs too), the session reports how
// its process ended and its channel closes; then the connection closes. keep sees every
// authenticated connection's remote address and login and must not modify the login. A
// login being decided while Revoke runs is judged by keep once it is recorded, so keep must
// judge against the rules current when Revoke was called. Revoke returns once those
// connections are closed.
func (s *Server) Revoke(keep func(remote netip.AddrPort, l *Login) bool, reason string) {
	s.revoked.mu.Lock()
	s.revoked.gen++
	s.revoked.keep, s.revoked.reason = keep, reason
	s.revoked.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range s.authenticated() {
		if keep(c.remote, c.login) {
			continue
		}
		s.logf("sshd: login verdict=revoke remote=%s source=%q local_user=%q rule=%q",
			c.remote, c.login.Source, c.login.LocalUser, c.login.Rule)
		s.audit(Decision{Kind: DecisionRevoke, Remote: c.remote, LocalUser: c.login.LocalUser, Rule: c.login.Rule, Reason: reason})
		wg.Go(func() { c.end(reason) })
	}
	wg.Wait()
}
