// Package opensshtest helps tests that drive the real OpenSSH tools (ssh, scp, sftp)
// against our server: it makes local accounts and runs the tools.
package opensshtest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strings"
	"testing"
)

// AddUser adds local account name (with a home and bash, in the given supplementary groups,
// which it creates) and removes it, its processes and the groups when t ends. It needs root
// and fails t without it.
func AddUser(t testing.TB, name string, groups ...string) *user.User {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("this test creates users with useradd and must run as root (uid is %d)", os.Geteuid())
	}
	exec.Command("userdel", "-r", name).Run() // leftovers of an interrupted run
	var cmds [][]string
	for _, g := range groups {
		exec.Command("groupdel", g).Run()
		cmds = append(cmds, []string{"groupadd", g})
	}
	useradd := []string{"useradd", "-m", "-s", "/bin/bash"}
	if len(groups) > 0 {
		useradd = append(useradd, "-G", strings.Join(groups, ","))
	}
	cmds = append(cmds, append(useradd, name))
	for _, c := range cmds {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
	t.Cleanup(func() {
		exec.Command("pkill", "-KILL", "-u", name).Run()
		exec.Command("userdel", "-r", name).Run()
		for _, g := range groups {
			exec.Command("groupdel", g).Run()
		}
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Run runs tool with args, stdin and extra environment, and returns its stdout, stderr and
// exit code; it fails t only if the tool could not be run at all.
func Run(t testing.TB, env []string, stdin io.Reader, tool string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(tool, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s: %v", tool, err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}
