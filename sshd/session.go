package sshd

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"tsconnect/internal/pty"
	"tsconnect/internal/safetext"
)

const (
	// killGrace is how long a revoked session's processes get between SIGHUP and SIGKILL.
	killGrace = 2 * time.Second
	// endTimeout bounds how long ending a session waits for the client before the
	// connection is closed under it.
	endTimeout = 10 * time.Second
)

// ptyRequest is a client's "pty-req" (RFC 4254 6.2).
type ptyRequest struct {
	Term                 string
	Cols, Rows, WPx, HPx uint32
	Modes                string
}

// windowChange is a client's "window-change" (RFC 4254 6.7).
type windowChange struct {
	Cols, Rows, WPx, HPx uint32
}

// session is one "session" channel: its requests and at most one process.
type session struct {
	conn *conn
	ch   ssh.Channel
	env  []string    // accepted client "env" requests, NAME=value
	pty  *ptyRequest // nil: no terminal

	refusals int            // refused requests so far (only serve touches it)
	agentFwd bool           // the client asked for agent forwarding and the login allows it
	agent    *agentListener // the forwarded agent's socket, once the process starts

	mu      sync.Mutex
	started bool      // a shell or exec was requested
	ending  bool      // being ended by Revoke or Close
	proc    *process  // running (or exited, not yet drained) process
	rec     Recording // the process's recording, if any
	kind    string    // the process's kind: shell, exec, subsystem
	since   time.Time // when the process started
	running sync.WaitGroup
	done    chan struct{} // closed when serve returns
}

func newSession(c *conn, ch ssh.Channel) *session {
	return &session{conn: c, ch: ch, done: make(chan struct{})}
}

// serve answers the channel's requests until the channel closes, then hangs up the
// process if the client left first and waits for it.
func (s *session) serve(reqs <-chan *ssh.Request) {
	defer close(s.done)
	for req := range reqs {
		ok, then := s.handle(req)
		if req.WantReply {
			req.Reply(ok, nil)
		}
		if then != nil {
			then()
		}
	}
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p != nil {
		p.hangup()
	}
	s.running.Wait()
	if s.agent != nil {
		s.agent.close()
	}
}

// handle decides one request; then, if non-nil, runs after the reply is sent.
func (s *session) handle(req *ssh.Request) (ok bool, then func()) {
	switch req.Type {
	case "pty-req":
		var r ptyRequest
		if s.isStarted() || ssh.Unmarshal(req.Payload, &r) != nil {
			return false, nil
		}
		if err := checkText("the terminal type", r.Term, MaxTermLen); err != nil {
			return s.refuse("pty-req", err)
		}
		if len(r.Modes) > MaxTermModesLen {
			return s.refuse("pty-req", fmt.Errorf("the terminal modes are %d bytes, more than %d", len(r.Modes), MaxTermModesLen))
		}
		s.mu.Lock()
		s.pty = &r
		s.mu.Unlock()
		return true, nil
	case "env":
		var kv struct{ Name, Value string }
		if s.isStarted() || ssh.Unmarshal(req.Payload, &kv) != nil {
			return false, nil
		}
		switch {
		case len(s.env) >= MaxEnvVars:
			return s.refuse("env", fmt.Errorf("more than %d variables", MaxEnvVars))
		case len(kv.Name) > MaxEnvNameLen:
			return s.refuse("env", fmt.Errorf("a variable name of %d bytes, more than %d", len(kv.Name), MaxEnvNameLen))
		case len(kv.Value) > MaxEnvValueLen:
			return s.refuse("env", fmt.Errorf("the value of %s is %d bytes, more than %d", safetext.Bounded(kv.Name, 64), len(kv.Value), MaxEnvValueLen))
		case !acceptEnv(kv.Name, kv.Value, s.conn.login.AcceptEnv):
			return false, nil // not accepted here, as sshd's AcceptEnv: not worth a log line
		}
		s.env = append(s.env, kv.Name+"="+kv.Value)
		return true, nil
	case "window-change":
		var w windowChange
		if ssh.Unmarshal(req.Payload, &w) != nil {
			return false, nil
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.pty == nil {
			return false, nil
		}
		s.pty.Cols, s.pty.Rows, s.pty.WPx, s.pty.HPx = w.Cols, w.Rows, w.WPx, w.HPx
		if s.proc != nil && s.proc.pty != nil {
			ok := pty.SetSize(s.proc.pty, w.Cols, w.Rows, w.WPx, w.HPx) == nil
			if rec := s.rec; rec != nil {
				return ok, func() { rec.Resize(w.Cols, w.Rows) }
			}
			return ok, nil
		}
		return true, nil
	case "shell":
		return s.start("")
	case "exec":
		var cmd struct{ Command string }
		if ssh.Unmarshal(req.Payload, &cmd) != nil {
			return false, nil
		}
		if len(cmd.Command) > MaxCommandLen {
			return s.refuse("exec", fmt.Errorf("the command is %d bytes, more than %d", len(cmd.Command), MaxCommandLen))
		}
		if i := strings.IndexByte(cmd.Command, 0); i >= 0 {
			return s.refuse("exec", fmt.Errorf("the command has a NUL byte at byte %d", i))
		}
		return s.start(cmd.Command)
	case "signal":
		var sig struct{ Name string }
		s.mu.Lock()
		p := s.proc
		s.mu.Unlock()
		if p == nil || ssh.Unmarshal(req.Payload, &sig) != nil {
			return false, nil
		}
		n, ok := signalsByName[sig.Name]
		return ok && p.cmd.Process.Signal(n) == nil, nil
	case "subsystem":
		var sub struct{ Name string }
		if ssh.Unmarshal(req.Payload, &sub) != nil {
			return false, nil
		}
		if err := checkText("the subsystem name", sub.Name, MaxSubsystemLen); err != nil {
			return s.refuse("subsystem", err)
		}
		if sub.Name != "sftp" || len(s.conn.srv.SFTPServer) == 0 {
			return s.refuse("subsystem", fmt.Errorf("unknown subsystem %q", sub.Name))
		}
		return s.startProcess("", s.conn.srv.SFTPServer)
	case "auth-agent-req@openssh.com":
		if s.isStarted() || !s.conn.login.AllowAgentForward {
			s.conn.srv.logf("sshd: agent forwarding refused remote=%s local_user=%q", s.conn.remote, s.conn.login.LocalUser)
			return false, nil
		}
		s.agentFwd = true
		return true, nil
	default:
		// "x11-req" and anything else are refused.
		return false, nil
	}
}

// refuse logs a refused request (at most maxRefusalLogs lines a session, so a client
// repeating it cannot flood the log) and answers it with failure.
func (s *session) refuse(kind string, err error) (bool, func()) {
	s.refusals++
	if s.refusals <= maxRefusalLogs {
		s.conn.refuseRequest(kind, err)
	}
	return false, nil
}

// maxRefusalLogs is how many refused requests of one session are logged.
const maxRefusalLogs = 8

func (s *session) isStarted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started
}

// acceptEnv reports whether a client-sent variable is passed to the session: TERM,
// LANG, LC_* and names matching one of patterns (* and ?); LD_* never.
func acceptEnv(name, value string, patterns []string) bool {
	if name == "" || strings.ContainsAny(name, "=\x00") || strings.Contains(value, "\x00") || strings.HasPrefix(name, "LD_") {
		return false
	}
	if name == "LANG" || name == "TERM" || strings.HasPrefix(name, "LC_") {
		return true
	}
	for _, p := range patterns {
		if ok, err := path.Match(p, name); err == nil && ok && !strings.Contains(name, "/") {
			return true
		}
	}
	return false
}

// start begins the session's process for command ("" = interactive login shell).
// A process that cannot be started still gets a successful reply; the client then sees
// the error on stderr and exit status 127 (not found) or 126, as from a shell.
func (s *session) start(command string) (bool, func()) {
	return s.startProcess(command, nil)
}

// startProcess starts command, or argv when non-empty (a subsystem's program). A shell
// or exec session's recording is opened first (Server.Record); if that fails the session
// ends with the error.
func (s *session) startProcess(command string, argv []string) (bool, func()) {
	if s.isStarted() {
		return false, nil
	}
	var rec Recording
	var recErr error
	if len(argv) == 0 {
		rec, recErr = s.openRecording(command) // unlocked: it may take seconds
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.ending {
		if rec != nil {
			rec.Close(-1)
		}
		return false, nil
	}
	s.started = true
	c := s.conn
	if recErr != nil {
		c.srv.logf("sshd: session refused remote=%s local_user=%q error=%q", c.remote, c.login.LocalUser, recErr.Error())
		c.srv.audit(Decision{Kind: DecisionReject, Remote: c.remote, LocalUser: c.login.LocalUser, Rule: c.login.Rule, Reason: recErr.Error()})
		return true, func() {
			fmt.Fprintf(s.ch.Stderr(), "tsconnect: %v\r\n", recErr)
			s.finish(exitStatusRequest(1))
		}
	}
	acct, err := lookupAccount(c.login.LocalUser)
	var p *process
	env := s.env
	if err == nil && s.agentFwd {
		s.agent, err = listenAgent(acct, c)
		if err == nil {
			env = append(env[:len(env):len(env)], "SSH_AUTH_SOCK="+s.agent.path)
		}
	}
	if err == nil {
		pty := s.pty
		if len(argv) > 0 {
			pty = nil
		}
		p, err = startProcess(processSpec{
			Account: acct, Command: command, Argv: argv, PTY: pty,
			Env: sessionEnv(acct, c.remote, c.local, env),
		})
	}
	kind := "exec"
	if len(argv) > 0 {
		kind = "subsystem"
	} else if command == "" {
		kind = "shell"
	}
	if err != nil && rec != nil {
		rec.Close(-1)
	}
	if err != nil {
		c.srv.logf("sshd: session failed remote=%s local_user=%q kind=%s error=%q", c.remote, c.login.LocalUser, kind, err.Error())
		status := uint32(126)
		if errors.Is(err, fs.ErrNotExist) {
			status = 127
		}
		return true, func() {
			fmt.Fprintf(s.ch.Stderr(), "tsconnect: %v\r\n", err)
			s.finish(exitStatusRequest(status))
		}
	}
	c.srv.logf("sshd: session start remote=%s local_user=%q kind=%s pty=%t pid=%d recorded=%t", c.remote, c.login.LocalUser, kind, s.pty != nil, p.cmd.Process.Pid, rec != nil)
	s.proc, s.rec, s.kind, s.since = p, rec, kind, time.Now()
	s.running.Add(1)
	return true, func() {
		if rec != nil {
			go s.watchRecording(rec)
		}
		go func() {
			defer s.running.Done()
			s.run(p)
		}()
	}
}

// run copies the process's I/O until it exits and its output is drained, then reports
// the exit to the client and closes the channel.
func (s *session) run(p *process) {
	var in io.Reader = s.ch
	var stdout, stderr io.Writer = s.ch, s.ch.Stderr()
	if s.rec != nil {
		in = recordedReader{s.ch, s.rec}
		stdout, stderr = recordedWriter{stdout, s.rec}, recordedWriter{stderr, s.rec}
	}
	go func() {
		io.Copy(p.stdin, in)
		if p.pty == nil {
			p.stdin.Close() // propagate the client's EOF
		}
	}()
	outs := []*output{newOutput(p.stdout, stdout)}
	if p.stderr != nil {
		outs = append(outs, newOutput(p.stderr, stderr))
	}
	p.cmd.Wait()
	p.exited.Store(true)
	for _, o := range outs {
		o.processExited()
	}
	for _, o := range outs {
		<-o.done
	}
	p.close()
	exit := exitRequest(p.cmd.ProcessState)
	code := exitCode(p.cmd.ProcessState)
	end := Decision{Kind: DecisionEnd, Remote: s.conn.remote, LocalUser: s.conn.login.LocalUser, Rule: s.conn.login.Rule,
		ExitCode: code, Duration: time.Since(s.since), Session: s.kind}
	if s.rec != nil {
		end.Recording = s.rec.ID()
		select {
		case <-s.rec.Failed():
			end.Reason = s.rec.Err().Error()
		default:
		}
		s.rec.Close(code)
	}
	s.conn.srv.logf("sshd: session end remote=%s local_user=%q pid=%d %s", s.conn.remote, s.conn.login.LocalUser, p.cmd.Process.Pid, exit.desc)
	s.conn.srv.audit(end)
	s.finish(exit)
}

// finish sends the exit report, then EOF and close.
func (s *session) finish(exit exitReport) {
	s.ch.SendRequest(exit.name, false, exit.payload)
	s.ch.CloseWrite()
	s.ch.Close()
}

// end ends the session: reason (if any) goes to the client's stderr, the process
// session gets SIGHUP then SIGKILL, and end returns once the channel is done.
func (s *session) end(reason string) {
	s.mu.Lock()
	first := !s.ending
	s.ending = true
	p, tty := s.proc, s.pty != nil
	s.mu.Unlock()
	if first {
		if reason != "" {
			eol := "\n"
			if tty {
				eol = "\r\n"
			}
			wrote := make(chan struct{})
			go func() {
				io.WriteString(s.ch.Stderr(), strings.TrimRight(reason, "\r\n")+eol)
				close(wrote)
			}()
			select {
			case <-wrote:
			case <-time.After(endTimeout / 5): // client not reading; go on without it
			}
		}
		if p != nil {
			killProcessSession(p.cmd.Process.Pid, killGrace)
		} else {
			s.ch.Close()
		}
	}
	select {
	case <-s.done:
	case <-time.After(endTimeout):
		s.ch.Close() // the connection is closed next, which ends serve
	}
}

// exitReport is the final request of a session: "exit-status" or "exit-signal".
type exitReport struct {
	name    string
	payload []byte
	desc    string // for the log
}

func exitStatusRequest(code uint32) exitReport {
	return exitReport{name: "exit-status", payload: ssh.Marshal(struct{ Status uint32 }{code}), desc: fmt.Sprintf("exit=%d", code)}
}

// exitRequest describes how the process ended (RFC 4254 6.10).
func exitRequest(ps *os.ProcessState) exitReport {
	if ps == nil {
		return exitStatusRequest(255)
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok {
		return exitStatusRequest(255)
	}
	if ws.Signaled() {
		name := signalName(ws.Signal())
		return exitReport{name: "exit-signal", payload: ssh.Marshal(struct {
			Signal     string
			CoreDumped bool
			Error      string
			Lang       string
		}{name, ws.CoreDump(), "", ""}), desc: "signal=" + name}
	}
	return exitStatusRequest(uint32(ws.ExitStatus()))
}

// signalName is sig's RFC 4254 name, or "NAME@openssh.com" for signals the RFC lacks.
func signalName(sig syscall.Signal) string {
	for n, s := range signalsByName {
		if s == sig {
			return n
		}
	}
	return strings.TrimPrefix(unixSignalName(sig), "SIG") + "@openssh.com"
}
