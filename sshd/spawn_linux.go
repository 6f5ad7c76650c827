package sshd

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// canRunAs reports whether sessions can run as acct: any account when the agent is
// root (each child gets acct's credentials), else only the agent's own user.
func canRunAs(acct *account) error {
	if os.Geteuid() == 0 || acct.UID == uint32(os.Getuid()) {
		return nil
	}
	self := strconv.Itoa(os.Getuid())
	if u, err := user.LookupId(self); err == nil {
		self = u.Username
	}
	return fmt.Errorf("the agent here runs as %q, not root, so it can only log in as %q", self, self)
}

// sysProcAttr puts the process in a new session (so the whole session can be signalled)
// and, with a terminal, makes stdin its controlling terminal. A root agent gives the child
// acct's uid, gid and supplementary groups; the agent's own credentials never change.
func sysProcAttr(acct *account, tty bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setsid: true, Setctty: tty, Ctty: 0}
	if os.Geteuid() == 0 {
		a.Credential = &syscall.Credential{Uid: acct.UID, Gid: acct.GID, Groups: acct.Groups}
	}
	return a
}

// chownPTY gives the terminal to acct (group tty, mode 0620) as login does; only a root
// agent can, and only it needs to.
func chownPTY(slave *os.File, acct *account) error {
	if os.Geteuid() != 0 {
		return nil
	}
	gid := int(acct.GID)
	if g, err := user.LookupGroup("tty"); err == nil {
		if n, err := strconv.Atoi(g.Gid); err == nil {
			gid = n
		}
	}
	if err := slave.Chown(int(acct.UID), gid); err != nil {
		return err
	}
	return slave.Chmod(0o620)
}

// hangupGroup sends SIGHUP to the process group led by pid.
func hangupGroup(pid int) {
	unix.Kill(-pid, unix.SIGHUP)
}

// killProcessSession ends every process of the session sid, background jobs in their own
// process groups included: SIGHUP and SIGCONT, then SIGKILL for what is left after grace.
// Processes that left the session with setsid themselves are out of reach.
func killProcessSession(sid int, grace time.Duration) {
	for _, pid := range sessionMembers(sid) {
		unix.Kill(pid, unix.SIGHUP)
		unix.Kill(pid, unix.SIGCONT)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if len(sessionMembers(sid)) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	for range 50 { // members may still be forking
		m := sessionMembers(sid)
		if len(m) == 0 {
			return
		}
		for _, pid := range m {
			unix.Kill(pid, unix.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sessionMembers lists the live (non-zombie) processes whose session id is sid.
func sessionMembers(sid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, state, ok := procSession(pid); ok && s == sid && state != 'Z' && state != 'X' {
			out = append(out, pid)
		}
	}
	return out
}

// procSession reads the session id and state of pid from /proc/pid/stat
// ("pid (comm) state ppid pgrp session ...", comm may contain spaces and parentheses).
func procSession(pid int) (sid int, state byte, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 4 || len(f[0]) != 1 {
		return 0, 0, false
	}
	sid, err = strconv.Atoi(f[3])
	return sid, f[0][0], err == nil
}

func unixSignalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return "SIG" + strconv.Itoa(int(sig))
}

// signalsByName maps RFC 4254 signal names to signals.
var signalsByName = map[string]syscall.Signal{
	"ABRT": unix.SIGABRT, "ALRM": unix.SIGALRM, "FPE": unix.SIGFPE, "HUP": unix.SIGHUP,
	"ILL": unix.SIGILL, "INT": unix.SIGINT, "KILL": unix.SIGKILL, "PIPE": unix.SIGPIPE,
	"QUIT": unix.SIGQUIT, "SEGV": unix.SIGSEGV, "TERM": unix.SIGTERM,
	"USR1": unix.SIGUSR1, "USR2": unix.SIGUSR2,
}
