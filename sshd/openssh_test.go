//go:build linux

package sshd

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenSSHClient runs the real OpenSSH client against the server: host key pinned,
// no keys or passwords, output and exit codes passed through.
func TestOpenSSHClient(t *testing.T) {
	sshPath, err := exec.LookPath("ssh")
	if err != nil {
		t.Fatalf("the OpenSSH client is required (apt-get install openssh-client): %v", err)
	}
	e := newEnv(t, false)
	host, port, _ := net.SplitHostPort(e.addr)
	home := t.TempDir()
	knownHosts := filepath.Join(home, "known_hosts")
	var kh strings.Builder
	for _, line := range AuthorizedKeys(e.srv.HostKeys) {
		kh.WriteString("[" + host + "]:" + port + " " + line + "\n")
	}
	if err := os.WriteFile(knownHosts, []byte(kh.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	ssh := func(user string, args ...string) (stdout, stderr string, code int) {
		t.Helper()
		cmd := exec.Command(sshPath, append([]string{"-F", "/dev/null",
			"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + knownHosts,
			"-o", "GlobalKnownHostsFile=/dev/null", "-p", port, user + "@" + host}, args...)...)
		cmd.Env = append(os.Environ(), "HOME="+home)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("ssh: %v", err)
		}
		return out.String(), errb.String(), cmd.ProcessState.ExitCode()
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
