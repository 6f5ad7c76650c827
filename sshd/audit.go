package sshd

import (
	"net/netip"
	"time"
)

// Decisions of an SSH login, Decision.Kind.
const (
	DecisionAccept = "accept" // a login let in
	DecisionReject = "reject" // a login, or a session it asked for, refused
	DecisionRevoke = "revoke" // a live login cut by Revoke or End
	DecisionEnd    = "end"    // a shell, command or subsystem ended
)

// Decision is one login decision of the server, for Server.Audit.
type Decision struct {
	Time      time.Time
	Kind      string // DecisionAccept, …
	Remote    netip.AddrPort
	User      string // the user the client asked for, as it sent it ("" when not known here)
	LocalUser string
	Rule      string
	Reason    string // why a refusal, revocation or cut session happened
	// Recording is the ID of the ended session's recording ("" when unrecorded).
	Recording string
	// ExitCode (0–255, -1 unknown), Duration and Session (shell, exec, subsystem) describe
	// an ended session.
	ExitCode int
	Duration time.Duration
	Session  string
}

// audit passes d to Server.Audit, if set, stamped now.
func (s *Server) audit(d Decision) {
	if s.Audit != nil {
		d.Time = time.Now()
		s.Audit(d)
	}
}
