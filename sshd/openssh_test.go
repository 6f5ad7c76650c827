//go:build linux

package sshd

import (
	"os/exec"
	"strings"
	"testing"

	"tsconnect/sshd/sshdtest"
)

// TestOpenSSHClient runs the real OpenSSH client against the server: host key pinned,
// no keys or passwords, output and exit codes passed through.
func TestOpenSSHClient(t *testing.T) {
	sshPath, err := exec.LookPath("ssh")
	if err != nil {
		t.Fatalf("the OpenSSH client is required (apt-get install openssh-client): %v", err)
	}
	e := newEnv(t, false)
	c := sshdtest.NewOpenSSH(t, e.addr, e.srv.HostKeys)
	ssh := func(user string, args ...string) (stdout, stderr string, code int) {
		t.Helper()
		return c.Run("", sshPath, append([]string{"-p", c.Port, user + "@" + c.Host}, args...)...)
	}

	if out, stderr, code := ssh(e.me.Username, "echo $((6*7))"); out != "42\n" || code != 0 {
		t.Errorf("echo $((6*7)): stdout %q, exit %d (stderr %q)", out, code, stderr)
	}
	if _, _, code := ssh(e.me.Username, "exit 3"); code != 3 {
		t.Errorf("exit 3: ssh exited %d", code)
	}
	if _, _, code := ssh(e.me.Username, "no-such-command-tsconnect"); code != 127 {
		t.Errorf("missing command: ssh exited %d, want 127", code)
	}
	if out, _, code := ssh(e.me.Username, "-tt", "stty size"); !strings.Contains(out, " ") || code != 0 {
		t.Errorf("-tt stty size: %q, exit %d", out, code)
	}
	// Refused: the banner explains, then OpenSSH reports Permission denied (exit 255).
	_, stderr, code := ssh("bob", "true")
	if code != 255 || !strings.Contains(stderr, `no SSH rule lets alice@example.com log in as "bob"`) || !strings.Contains(stderr, "Permission denied") {
		t.Errorf("refused login: exit %d, stderr %q", code, stderr)
	}
}
