//go:build linux

package sshd

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"tsconnect/internal/opensshtest"
	"tsconnect/internal/pty"
	"tsconnect/sshd/sshdtest"
)

// createUser adds a local account (with a home and bash, in a fresh supplementary group)
// for the test and removes it afterwards. It needs root and fails without it.
func createUser(t *testing.T, name string) *account {
	t.Helper()
	opensshtest.AddUser(t, name, name+"g")
	acct, err := lookupAccount(name)
	if err != nil {
		t.Fatal(err)
	}
	return acct
}

// opensshClient runs the real OpenSSH tools against a test server, pinning its host keys.
type opensshClient struct{ *sshdtest.OpenSSH }

func newOpenSSHClient(t *testing.T, e *testEnv) *opensshClient {
	t.Helper()
	return &opensshClient{sshdtest.NewOpenSSH(t, e.addr, e.srv.HostKeys)}
}

// mappedEnv serves logins as whichever user is asked for, with perms applied to the Login.
func mappedEnv(t *testing.T, perms func(*Login)) *testEnv {
	return newEnv(t, false, func(s *Server) {
		s.SFTPServer = testSFTPServer
		s.Authorize = func(ctx context.Context, req AuthRequest) (*Login, error) {
			l := &Login{LocalUser: req.User(), Source: "alice@example.com on laptop (" + req.Remote().Addr().String() + ")", Rule: "ssh[0]"}
			if perms != nil {
				perms(l)
			}
			return l, nil
		}
	})
}

// TestOpenSSHMappedUser logs in as a created user through a root server: identity, groups,
// home, environment, exit codes, terminal.
func TestOpenSSHMappedUser(t *testing.T) {
	acct := createUser(t, "tscsshd1")
	e := mappedEnv(t, func(l *Login) { l.AcceptEnv = []string{"TSC_*"} })
	c := newOpenSSHClient(t, e)

	out, stderr, code := c.SSH(acct.Username, "id -un; id -u; id -G; pwd")
	wantGroups := []string{}
	for _, g := range acct.Groups {
		wantGroups = append(wantGroups, strconv.Itoa(int(g)))
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 4 || lines[0] != acct.Username || lines[1] != acct.Uid || lines[3] != acct.HomeDir {
		t.Fatalf("id/pwd: %q (exit %d, stderr %q), want %s, uid %s, home %s", out, code, stderr, acct.Username, acct.Uid, acct.HomeDir)
	}
	for _, g := range wantGroups {
		if !strings.Contains(" "+lines[2]+" ", " "+g+" ") {
			t.Errorf("id -G = %q lacks supplementary group %s", lines[2], g)
		}
	}

	c.Env = []string{"TSC_OK=yes", "LD_PRELOAD=/nonexistent.so", "NOT_ACCEPTED=1", "LC_TIME=C.UTF-8"}
	out, _, _ = c.SSH(acct.Username, "-o", "SendEnv=TSC_OK LD_PRELOAD NOT_ACCEPTED LC_TIME", "env")
	c.Env = nil
	env := map[string]string{}
	for _, kv := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	for k, want := range map[string]string{
		"USER": acct.Username, "LOGNAME": acct.Username, "HOME": acct.HomeDir, "PWD": acct.HomeDir,
		"SHELL": "/bin/bash", "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games",
		"TSC_OK": "yes", "LC_TIME": "C.UTF-8",
	} {
		if env[k] != want {
			t.Errorf("env %s = %q, want %q", k, env[k], want)
		}
	}
	for _, k := range []string{"LD_PRELOAD", "NOT_ACCEPTED", "SSH_TTY"} {
		if v, ok := env[k]; ok {
			t.Errorf("env has %s=%q; it must not", k, v)
		}
	}
	if !strings.HasPrefix(env["SSH_CONNECTION"], "127.0.0.1 ") || !strings.HasSuffix(env["SSH_CONNECTION"], " 127.0.0.1 "+c.Port) {
		t.Errorf("SSH_CONNECTION = %q", env["SSH_CONNECTION"])
	}

	if _, _, code := c.SSH(acct.Username, "exit 42"); code != 42 {
		t.Errorf("exit 42: ssh exited %d", code)
	}
	if _, stderr, code := c.SSH(acct.Username, "no-such-command-tsconnect"); code != 127 {
		t.Errorf("missing command: ssh exited %d, want 127 (stderr %q)", code, stderr)
	}
	// A process killed by a signal comes back as exit-signal (logged); OpenSSH then exits 255.
	if _, stderr, code := c.SSH(acct.Username, "kill -TERM $$"); code != 255 || !e.logged("signal=TERM") {
		t.Errorf("kill -TERM $$: exit %d (stderr %q), want 255 and exit-signal TERM", code, stderr)
	}

	// A terminal of the client's size, owned by the user.
	out = c.sshOnTerminal(t, acct.Username, 33, 101, "stty size; stat -c '%U %a' $(tty); echo TERM=$TERM")
	if !strings.Contains(out, "33 101") || !strings.Contains(out, acct.Username+" 620") || !strings.Contains(out, "TERM=xterm-tsc") {
		t.Errorf("on a 33x101 terminal: output %q, want the size 33 101, tty owned by %s mode 620, TERM=xterm-tsc", out, acct.Username)
	}
}

// sshOnTerminal runs ssh -tt inside a terminal of rows x cols (so ssh sends that size) and
// returns what it printed.
func (c *opensshClient) sshOnTerminal(t *testing.T, user string, rows, cols uint32, command string) string {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	pty.SetSize(master, cols, rows, 0, 0)
	cmd := exec.Command("ssh", append(c.Opts(), "-tt", "-p", c.Port, "-l", user, c.Host, command)...)
	cmd.Env = append(os.Environ(), "HOME="+c.Home, "TERM=xterm-tsc")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var out bytes.Buffer
	io.Copy(&out, master) // ends with EIO once ssh and its terminal are gone
	cmd.Wait()
	return out.String()
}

// TestOpenSSHFileTransfer copies with scp (SFTP mode) both ways and runs sftp in batch
// mode as a created user: bytes exact, files owned by the user, the user's permissions.
func TestOpenSSHFileTransfer(t *testing.T) {
	acct := createUser(t, "tscsshd2")
	e := mappedEnv(t, nil)
	c := newOpenSSHClient(t, e)
	dir := t.TempDir()
	data := make([]byte, 5<<20)
	rand.Read(data)
	local := filepath.Join(dir, "up.bin")
	if err := os.WriteFile(local, data, 0o644); err != nil {
		t.Fatal(err)
	}
	remote := fmt.Sprintf("%s@%s:", acct.Username, c.Host)
	if _, stderr, code := c.Run("", "scp", "-P", c.Port, local, remote+"up.bin"); code != 0 {
		t.Fatalf("scp up: exit %d: %s", code, stderr)
	}
	got, err := os.ReadFile(filepath.Join(acct.HomeDir, "up.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("uploaded file: %d bytes, equal=%t, %v", len(got), bytes.Equal(got, data), err)
	}
	assertOwner(t, filepath.Join(acct.HomeDir, "up.bin"), acct)
	back := filepath.Join(dir, "down.bin")
	if _, stderr, code := c.Run("", "scp", "-P", c.Port, remote+"up.bin", back); code != 0 {
		t.Fatalf("scp down: exit %d: %s", code, stderr)
	}
	if got, _ := os.ReadFile(back); !bytes.Equal(got, data) {
		t.Fatalf("downloaded file differs (%d bytes)", len(got))
	}

	batch := fmt.Sprintf("put %s viasftp.bin\nls -l\nget viasftp.bin %s\n", local, filepath.Join(dir, "viasftp.bin"))
	out, stderr, code := c.Run(batch, "sftp", "-P", c.Port, "-b", "-", acct.Username+"@"+c.Host)
	if code != 0 || !strings.Contains(out, "viasftp.bin") {
		t.Fatalf("sftp batch: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "viasftp.bin")); !bytes.Equal(got, data) {
		t.Errorf("sftp get returned %d bytes, not the file put", len(got))
	}
	assertOwner(t, filepath.Join(acct.HomeDir, "viasftp.bin"), acct)

	_, stderr, code = c.Run("get /etc/shadow "+filepath.Join(dir, "shadow")+"\n", "sftp", "-P", c.Port, "-b", "-", acct.Username+"@"+c.Host)
	if code == 0 || !strings.Contains(stderr, "ermission denied") {
		t.Errorf("sftp get /etc/shadow as %s: exit %d, stderr %q; want Permission denied", acct.Username, code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "shadow")); err == nil {
		t.Errorf("/etc/shadow was copied")
	}

	// Unknown subsystems are refused.
	if _, stderr, code := c.SSH(acct.Username, "-s", "no-such-subsystem"); code == 0 {
		t.Errorf("unknown subsystem accepted (stderr %q)", stderr)
	}
}

func assertOwner(t *testing.T, path string, acct *account) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != acct.UID || st.Gid != acct.GID {
		t.Errorf("%s is owned by %d:%d, want %s (%d:%d)", path, st.Uid, st.Gid, acct.Username, acct.UID, acct.GID)
	}
}

// serveHello answers every connection on a loopback port with "hello\n".
func serveHello(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "hello\n")
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// TestOpenSSHForwarding checks -L (as -W), -R and -A where the login allows them and
// that each is refused where it does not.
func TestOpenSSHForwarding(t *testing.T) {
	acct := createUser(t, "tscsshd3")
	hello := serveHello(t)
	agentSock, agentKey := startSSHAgent(t)

	for _, allowed := range []bool{true, false} {
		t.Run(fmt.Sprintf("allowed=%t", allowed), func(t *testing.T) {
			e := mappedEnv(t, func(l *Login) {
				if allowed {
					l.GrantAcceptDefaults()
				}
			})
			c := newOpenSSHClient(t, e)
			out, stderr, _ := c.SSH(acct.Username, "-W", "127.0.0.1:"+hello)
			if allowed && out != "hello\n" {
				t.Errorf("-W to a local port: %q (stderr %q), want hello", out, stderr)
			}
			if !allowed && (out != "" || !strings.Contains(stderr, "administratively prohibited")) {
				t.Errorf("-W refused: stdout %q, stderr %q, want administratively prohibited", out, stderr)
			}

			// -R: an unprivileged port works when allowed; port 80 never for a non-root user.
			_, stderr, code := c.SSH(acct.Username, "-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:"+hello, "true")
			if (code == 0) != allowed {
				t.Errorf("-R 0: exit %d (stderr %q), allowed=%t", code, stderr, allowed)
			}
			_, stderr, code = c.SSH(acct.Username, "-o", "ExitOnForwardFailure=yes", "-R", "80:127.0.0.1:"+hello, "true")
			if code == 0 || !strings.Contains(stderr, "remote port forwarding failed") {
				t.Errorf("-R 80 as %s: exit %d, stderr %q; want refused", acct.Username, code, stderr)
			}

			c.Env = []string{"SSH_AUTH_SOCK=" + agentSock}
			out, stderr, code = c.SSH(acct.Username, "-A", `test -n "$SSH_AUTH_SOCK" || { echo no agent; exit 0; }; stat -c '%U %a' "$SSH_AUTH_SOCK" "$(dirname "$SSH_AUTH_SOCK")"; ssh-add -L`)
			c.Env = nil
			if allowed {
				want := acct.Username + " 600\n" + acct.Username + " 700\n"
				if code != 0 || !strings.HasPrefix(out, want) || !strings.Contains(out, agentKey) {
					t.Errorf("-A: exit %d, output %q (stderr %q); want socket and dir owned by the user (0600, 0700) and the agent's key", code, out, stderr)
				}
			} else if out != "no agent\n" {
				t.Errorf("-A refused: output %q, want no agent", out)
			}
		})
	}
}

// startSSHAgent runs ssh-agent holding one new key; it returns the socket and the key.
func startSSHAgent(t *testing.T) (sock, pub string) {
	dir := t.TempDir()
	sock = filepath.Join(dir, "agent.sock")
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatalf("ssh-agent: %v", err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
	keyPath := filepath.Join(dir, "id")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tsc-test", "-f", keyPath).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	for i := 0; ; i++ {
		add := exec.Command("ssh-add", keyPath)
		add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		out, err := add.CombinedOutput()
		if err == nil {
			break
		}
		if i == 100 {
			t.Fatalf("ssh-add: %v %s", err, out)
		}
		time.Sleep(50 * time.Millisecond) // the agent is still creating its socket
	}
	b, err := os.ReadFile(keyPath + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	return sock, f[1]
}
