package sshd

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"

	"tsconnect/internal/pty"
)

// processSpec is what a session runs: the seam where a later issue switches to the mapped
// user's credentials (see sysProcAttr).
type processSpec struct {
	Account *account    // resolved local account to run as
	Command string      // "" runs an interactive login shell
	Argv    []string    // if non-empty, run this program directly (a subsystem) instead
	PTY     *ptyRequest // nil runs on pipes
	Env     []string    // from sessionEnv; TERM and SSH_TTY are added for a PTY
}

// process is a started session process and this side's ends of its I/O.
type process struct {
	cmd    *exec.Cmd
	pty    *os.File // PTY master, or nil
	stdin  *os.File // PTY master or the write end of stdin's pipe
	stdout *os.File // PTY master or the read end of stdout's pipe
	stderr *os.File // read end of stderr's pipe; nil with a PTY (it shares the terminal)
	exited atomic.Bool
}

// startProcess starts spec's process in its own session (setsid), as the login shell of the
// account with argv0 "-bash" style, or as "shell -c command", with the home directory as cwd.
func startProcess(spec processSpec) (*process, error) {
	acct := spec.Account
	shell := acct.Shell
	cmd := &exec.Cmd{Path: shell, Env: spec.Env, Dir: acct.HomeDir}
	if len(spec.Argv) > 0 {
		cmd.Path, cmd.Args = spec.Argv[0], spec.Argv
	} else if spec.Command == "" {
		cmd.Args = []string{"-" + filepath.Base(shell)}
	} else {
		cmd.Args = []string{filepath.Base(shell), "-c", spec.Command}
	}
	cmd.Dir = workDir(acct)
	cmd.SysProcAttr = sysProcAttr(acct, spec.PTY != nil)

	p := &process{cmd: cmd}
	var childEnds []*os.File
	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			f.Close()
		}
	}
	if spec.PTY != nil {
		master, slave, err := pty.Open()
		if err != nil {
			return nil, fmt.Errorf("open a terminal: %w", err)
		}
		r := spec.PTY
		if err := chownPTY(slave, acct); err != nil {
			closeAll([]*os.File{master, slave})
			return nil, fmt.Errorf("terminal ownership: %w", err)
		}
		if err := applyTerminalModes(slave, []byte(r.Modes)); err != nil {
			closeAll([]*os.File{master, slave})
			return nil, fmt.Errorf("terminal modes: %w", err)
		}
		pty.SetSize(master, r.Cols, r.Rows, r.WPx, r.HPx)
		term := r.Term
		if term == "" {
			term = "dumb"
		}
		cmd.Env = append(cmd.Env, "TERM="+term, "SSH_TTY="+slave.Name())
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		p.pty, p.stdin, p.stdout = master, master, master
		childEnds = []*os.File{slave}
	} else {
		inR, inW, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		outR, outW, err := os.Pipe()
		if err != nil {
			closeAll([]*os.File{inR, inW})
			return nil, err
		}
		errR, errW, err := os.Pipe()
		if err != nil {
			closeAll([]*os.File{inR, inW, outR, outW})
			return nil, err
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
		p.stdin, p.stdout, p.stderr = inW, outR, errR
		childEnds = []*os.File{inR, outW, errW}
	}
	err := cmd.Start()
	closeAll(childEnds)
	if err != nil {
		p.close()
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	return p, nil
}

// close releases this side's ends.
func (p *process) close() {
	for _, f := range []*os.File{p.pty, p.stdin, p.stdout, p.stderr} {
		if f != nil {
			f.Close()
		}
	}
}

// hangup tells a process whose client went away: SIGHUP to its process group, as a
// terminal hang-up would, and EOF on a stdin pipe. Once the process has exited, what it
// left running in the background is left alone.
func (p *process) hangup() {
	if p.exited.Load() {
		return
	}
	hangupGroup(p.cmd.Process.Pid)
	if p.pty == nil {
		p.stdin.Close()
	}
}

// sessionEnv is the environment of a session: the account's basics, a system default
// PATH, where the connection comes from, and the client variables that were accepted.
// Nothing of the agent's own environment leaks in.
func sessionEnv(acct *account, remote, local netip.AddrPort, clientEnv []string) []string {
	env := []string{
		"USER=" + acct.Username,
		"LOGNAME=" + acct.Username,
		"HOME=" + acct.HomeDir,
		"PWD=" + workDir(acct),
		"SHELL=" + acct.Shell,
		"PATH=" + defaultPath(acct),
		fmt.Sprintf("SSH_CLIENT=%s %d %d", remote.Addr(), remote.Port(), local.Port()),
		fmt.Sprintf("SSH_CONNECTION=%s %d %s %d", remote.Addr(), remote.Port(), local.Addr(), local.Port()),
	}
	set := map[string]bool{}
	for _, kv := range env {
		set[kv[:strings.IndexByte(kv, '=')]] = true
	}
	for _, kv := range clientEnv { // the server's own variables are not the client's to change
		if !set[kv[:strings.IndexByte(kv, '=')]] {
			env = append(env, kv)
		}
	}
	return env
}

// workDir is where sessions start: the home directory, "/" when it does not exist.
func workDir(acct *account) string {
	if fi, err := os.Stat(acct.HomeDir); err == nil && fi.IsDir() {
		return acct.HomeDir
	}
	return "/"
}

// defaultPath is the PATH a login starts with, as Debian's login.defs sets it.
func defaultPath(acct *account) string {
	if acct.Uid == "0" {
		return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	return "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"
}
