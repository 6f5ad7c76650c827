//go:build !linux

package sshd

// ProcessInSession reports whether pid runs inside one of this server's sessions; sessions
// only exist on Linux.
func (s *Server) ProcessInSession(pid int) bool { return false }
