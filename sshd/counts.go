package sshd

// Counts returns the server's open SSH connections that are logged in, and their sessions.
func (s *Server) Counts() (conns, sessions int) {
	for _, c := range s.authenticated() {
		c.mu.Lock()
		sessions += len(c.sessions)
		c.mu.Unlock()
		conns++
	}
	return conns, sessions
}
