package sshd

import (
	"os"
	"strconv"
	"strings"
)

// ProcessInSession reports whether pid runs inside one of this server's sessions: it or an
// ancestor belongs to the process session of a session's process (each is started with
// setsid), so a command can tell that acting on the server would cut off its own caller.
func (s *Server) ProcessInSession(pid int) bool {
	sids := map[int]bool{}
	for _, c := range s.authenticated() {
		c.mu.Lock()
		for se := range c.sessions {
			se.mu.Lock()
			if se.proc != nil {
				sids[se.proc.cmd.Process.Pid] = true
			}
			se.mu.Unlock()
		}
		c.mu.Unlock()
	}
	if len(sids) == 0 {
		return false
	}
	for range 256 { // walk up to init; bounded in case of a cycle while processes exit
		if pid <= 1 {
			return false
		}
		if sid, _, ok := procSession(pid); ok && sids[sid] || sids[pid] {
			return true
		}
		pid = parentPID(pid)
	}
	return false
}

// parentPID reads the parent of pid from /proc, 0 when unknown.
func parentPID(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}
