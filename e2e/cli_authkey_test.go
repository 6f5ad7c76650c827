package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"tsconnect/control"
	"tsconnect/internal/syncbuf"
)

// TestAuthKeyNotVisibleInPs: `tsconnect up` takes its key from --auth-key file:PATH and from
// $TSCONNECT_AUTH_KEY; either way the agent registers and the key is nowhere in its command
// line (what ps shows every local user). A key file others may read gets a warning; a
// missing or empty key file is a clear error.
func TestAuthKeyNotVisibleInPs(t *testing.T) {
	tn := newTestNet(t)
	up := func(name string, env []string, authArgs ...string) (*exec.Cmd, *syncbuf.Buffer, string) {
		sock := filepath.Join(t.TempDir(), "agent.sock")
		args := append([]string{"--socket", sock, "up", "--hostname", name, "--login-server", tn.url, "--state", t.TempDir()}, authArgs...)
		cmd := exec.Command(tsconnectBin, args...)
		cmd.Env = append(os.Environ(), env...)
		out := &syncbuf.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			if t.Failed() {
				t.Logf("%s output:\n%s", name, out)
			}
		})
		return cmd, out, sock
	}
	inPs := func(cmd *exec.Cmd, key string) bool {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/cmdline")
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Contains(b, []byte(key))
	}

	fileKey := tn.authKey(control.AuthKeyOptions{})
	keyFile := filepath.Join(t.TempDir(), "authkey")
	if err := os.WriteFile(keyFile, []byte(fileKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile, fileOut, fileSock := up("fromfile", nil, "--auth-key", "file:"+keyFile)
	waitStatus(t, fileSock, "fromfile")
	if inPs(fromFile, fileKey) {
		t.Error("with --auth-key file:PATH the key is in the agent's command line")
	}
	if strings.Contains(fileOut.String(), "readable by others") {
		t.Errorf("a 0600 key file got a warning:\n%s", fileOut)
	}

	envKey := tn.authKey(control.AuthKeyOptions{})
	fromEnv, _, envSock := up("fromenv", []string{"TSCONNECT_AUTH_KEY=" + envKey})
	waitStatus(t, envSock, "fromenv")
	if inPs(fromEnv, envKey) {
		t.Error("with $TSCONNECT_AUTH_KEY the key is in the agent's command line")
	}

	// A key file anyone may read still works, with a warning naming it.
	openKey := tn.authKey(control.AuthKeyOptions{})
	openFile := filepath.Join(t.TempDir(), "openkey")
	if err := os.WriteFile(openFile, []byte(openKey), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(openFile, 0o644)
	_, openOut, openSock := up("openfile", nil, "--auth-key", "file:"+openFile)
	waitStatus(t, openSock, "openfile")
	if !strings.Contains(openOut.String(), "auth key file "+openFile+" is readable by others") {
		t.Errorf("a 0644 key file got no warning:\n%s", openOut)
	}

	for _, c := range []struct{ arg, want string }{
		{"file:" + filepath.Join(t.TempDir(), "missing"), "no such file"},
		{"file:" + emptyFile(t), "is empty"},
		{"file:", "needs a path"},
	} {
		out, err := exec.Command(tsconnectBin, "--socket", filepath.Join(t.TempDir(), "s"), "up", "--login-server", tn.url,
			"--auth-key", c.arg, "--state", t.TempDir()).CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("up --auth-key %s: err=%v, want an error saying %q; output:\n%s", c.arg, err, c.want, out)
		}
	}
}

func emptyFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
