package sshd

import (
	"net/netip"
	"os"
	"syscall"
)

// Recording receives one session's terminal stream (Server.Record opens it). Its methods
// may block while the recording's destination is slow (that bounds what it buffers) and
// are safe for concurrent use.
type Recording interface {
	// Output records what the session wrote (stdout and stderr alike).
	Output(p []byte)
	// Input records what the client sent (a recording may drop it).
	Input(p []byte)
	// Resize records a window change of a terminal session.
	Resize(cols, rows uint32)
	// Failed is closed once the recording has broken and the session must end; Err then
	// says why (the client is shown it).
	Failed() <-chan struct{}
	Err() error
	// Close ends the recording with the session's exit code (0 to 255; -1 unknown).
	Close(exitCode int)
	// ID names the recording at its recorder (for the audit log).
	ID() string
}

// RecordRequest describes a shell or exec session about to start, for Server.Record.
type RecordRequest struct {
	Login   *Login
	Remote  netip.AddrPort
	Command string // "" for a shell
	// PTY is whether the session has a terminal; Term, Cols and Rows describe it.
	PTY        bool
	Term       string
	Cols, Rows uint32
}

// RecordSpec is how a login's sessions are recorded (carried by Login, used by the
// Server.Record of the program that decided the login; sshd does not read it).
type RecordSpec struct {
	// Recorders are tried in order.
	Recorders []netip.AddrPort `json:"recorders"`
	// Enforce refuses a session no recorder accepts and cuts it when its recording breaks.
	Enforce bool `json:"enforce,omitempty"`
	// Input records what the user types too.
	Input bool `json:"input,omitempty"`
	// SrcUser and SrcNode name who logged in from where, for the recording's header.
	SrcUser string `json:"srcUser"`
	SrcNode string `json:"srcNode"`
}

// openRecording asks Server.Record for a recording of the session about to run command
// (nil, nil: not recorded). Subsystems (SFTP) are never recorded.
func (s *session) openRecording(command string) (Recording, error) {
	srv := s.conn.srv
	if srv.Record == nil {
		return nil, nil
	}
	req := RecordRequest{Login: s.conn.login, Remote: s.conn.remote, Command: command}
	s.mu.Lock()
	if s.pty != nil {
		req.PTY, req.Term, req.Cols, req.Rows = true, s.pty.Term, s.pty.Cols, s.pty.Rows
	}
	s.mu.Unlock()
	return srv.Record(srv.ctx, req)
}

// watchRecording cuts the session when its recording fails, until the session is done.
func (s *session) watchRecording(rec Recording) {
	select {
	case <-rec.Failed():
		s.conn.srv.logf("sshd: recording failed, ending the session remote=%s local_user=%q error=%q", s.conn.remote, s.conn.login.LocalUser, rec.Err().Error())
		s.end("tsconnect: " + rec.Err().Error())
	case <-s.done:
	}
}

// recordedWriter writes to w, then records what it wrote as output.
type recordedWriter struct {
	w   interface{ Write([]byte) (int, error) }
	rec Recording
}

func (r recordedWriter) Write(p []byte) (int, error) {
	n, err := r.w.Write(p)
	if n > 0 {
		r.rec.Output(p[:n])
	}
	return n, err
}

// recordedReader records what is read from r as input.
type recordedReader struct {
	r   interface{ Read([]byte) (int, error) }
	rec Recording
}

func (r recordedReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.rec.Input(p[:n])
	}
	return n, err
}

// exitCode is the exit code a recording keeps for ps: the status, 128+N for signal N
// (as a shell reports it), -1 unknown.
func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	switch {
	case !ok:
		return -1
	case ws.Signaled():
		return min(128+int(ws.Signal()), 255)
	}
	return ws.ExitStatus() & 0xff
}
