package sshd

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"tsconnect/internal/safetext"
)

// Bounds on what a client may ask of a logged-in connection; past them the request is
// refused (and logged, its strings escaped and cut), the connection goes on.
const (
	// MaxSessions is how many session channels one connection may have open (OpenSSH's
	// MaxSessions default).
	MaxSessions = 10
	// MaxEnvVars is how many "env" requests one session accepts.
	MaxEnvVars = 64
	// MaxEnvNameLen and MaxEnvValueLen bound an accepted variable, in bytes.
	MaxEnvNameLen  = 256
	MaxEnvValueLen = 32 << 10
	// MaxTermLen bounds the terminal type of a "pty-req".
	MaxTermLen = 256
	// MaxTermModesLen bounds the encoded terminal modes of a "pty-req" (RFC 4254 8: 5 bytes
	// an opcode; 160 opcodes are defined).
	MaxTermModesLen = 4096
	// MaxCommandLen bounds an "exec" command, in bytes.
	MaxCommandLen = 128 << 10
	// MaxSubsystemLen bounds a "subsystem" name.
	MaxSubsystemLen = 64
	// MaxHostLen bounds a forwarding request's host (a DNS name is at most 253 bytes).
	MaxHostLen = 255
	// MaxRemoteForwards is how many -R listeners one connection may hold.
	MaxRemoteForwards = 16
	// MaxLocalForwards is how many -L channels one connection may have open at once.
	MaxLocalForwards = 64
)

// checkText returns why s (a client's what) is refused: longer than max bytes, a NUL or
// other control byte, or invalid UTF-8; nil when it is fine.
func checkText(what, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%s is %d bytes, more than %d", what, len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", what)
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
		return fmt.Errorf("%s has control byte 0x%02x at byte %d", what, s[i], i)
	}
	return nil
}

// refuseRequest logs a refused request of the connection, naming the problem.
func (c *conn) refuseRequest(kind string, err error) {
	c.srv.logf("sshd: %s refused remote=%s local_user=%q reason=%q", kind, c.remote, c.login.LocalUser, safetext.Bounded(err.Error(), 0))
}
