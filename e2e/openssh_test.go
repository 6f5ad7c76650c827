//go:build linux

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"tsconnect/agent"
	"tsconnect/control"
	"tsconnect/internal/eventually"
	"tsconnect/internal/opensshtest"
	"tsconnect/internal/syncbuf"
)

// startAgentAs runs `tsconnect up --ssh` as a process under account u and waits until
// the client node's map shows it serving SSH.
func (tn *testNet) startAgentAs(t *testing.T, u *user.User, name string, viewer *agent.Agent) {
	t.Helper()
	dir, err := os.MkdirTemp("", "tsc-e2e-agent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	state := filepath.Join(dir, "state")
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	os.Mkdir(state, 0o700)
	os.Chown(state, uid, gid)
	sock := filepath.Join(state, "agent.sock")
	cmd := exec.Command(tsconnectBin, "--socket", sock, "up", "--login-server", tn.url,
		"--auth-key", tn.authKey(control.AuthKeyOptions{}), "--hostname", name, "--state", state, "--ssh")
	cmd.Env = []string{"HOME=" + u.HomeDir, "PATH=/usr/bin:/bin"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("agent %s (as %s):\n%s", name, u.Username, out.String())
		}
	})
	waitPeer(t, viewer.Node(), name)
}

// openssh runs OpenSSH tools through `tsconnect nc` on the client agent's socket, with the
// target's host keys from the map as the only known hosts.
type openssh struct {
	t    *testing.T
	opts []string
	env  []string
}

func newOpenSSH(t *testing.T, tn *testNet, viewer *agent.Agent, clientName, host string) *openssh {
	t.Helper()
	return opensshVia(t, tn.sockets[clientName], host, waitPeer(t, viewer.Node(), host).SSHHostKeys)
}

// opensshVia is OpenSSH through `tsconnect nc` on the agent socket sock, knowing host by
// hostKeys (as the map lists them) only.
func opensshVia(t *testing.T, sock, host string, hostKeys []string) *openssh {
	t.Helper()
	home := t.TempDir()
	kh := filepath.Join(home, "known_hosts")
	var b strings.Builder
	for _, k := range hostKeys {
		b.WriteString(host + " " + k + "\n")
	}
	if err := os.WriteFile(kh, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return &openssh{t: t, env: []string{"HOME=" + home}, opts: []string{"-F", "/dev/null",
		"-o", "ProxyCommand=" + tsconnectBin + " --socket " + sock + " nc %h %p",
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + kh,
		"-o", "GlobalKnownHostsFile=/dev/null", "-o", "ServerAliveInterval=5"}}
}

func (o *openssh) run(stdin io.Reader, tool string, args ...string) (string, string, int) {
	o.t.Helper()
	return opensshtest.Run(o.t, o.env, stdin, tool, append(append([]string{}, o.opts...), args...)...)
}

// sshShell is an interactive OpenSSH session kept open: a shell without a terminal
// (ssh -T) that reads lines typed into it.
type sshShell struct {
	t    *testing.T
	in   io.WriteCloser
	out  *syncbuf.Buffer
	done chan struct{} // closed when ssh has exited
}

// shell opens an interactive session to target; it is killed when the test ends.
func (o *openssh) shell(target string) *sshShell {
	o.t.Helper()
	cmd := exec.Command("ssh", append(append([]string{"-T"}, o.opts...), target)...)
	cmd.Env = append(os.Environ(), o.env...)
	in, err := cmd.StdinPipe()
	if err != nil {
		o.t.Fatal(err)
	}
	sh := &sshShell{t: o.t, in: in, out: &syncbuf.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = sh.out, sh.out
	if err := cmd.Start(); err != nil {
		o.t.Fatal(err)
	}
	go func() { cmd.Wait(); close(sh.done) }()
	o.t.Cleanup(func() {
		cmd.Process.Kill()
		<-sh.done
		if o.t.Failed() {
			o.t.Logf("ssh %s output:\n%s", target, sh.out)
		}
	})
	return sh
}

// echo types `echo line` into the session and waits until line comes back.
func (sh *sshShell) echo(line string) {
	sh.t.Helper()
	if _, err := fmt.Fprintf(sh.in, "echo %q\n", line); err != nil {
		sh.t.Fatalf("typing into the SSH session: %v\n%s", err, sh.out)
	}
	eventually.True(sh.t, "the SSH session to echo "+line, func() bool { return strings.Contains(sh.out.String(), line+"\n") })
}

func (o *openssh) ssh(target string, args ...string) (string, string, int) {
	o.t.Helper()
	return o.run(strings.NewReader(""), "ssh", append([]string{target}, args...)...)
}

// TestOpenSSHAsNonRootAgentUser: an agent running as a created (non-root) user serves that
// user to OpenSSH through `tsconnect nc`; other users and privileged -R are refused.
func TestOpenSSHAsNonRootAgentUser(t *testing.T) {
	u := opensshtest.AddUser(t, "tsce2e1")
	tn := newTestNet(t)
	client := tn.startAgent("client")
	tn.startAgentAs(t, u, "usrv", client)
	o := newOpenSSH(t, tn, client, "client", "usrv")
	target := u.Username + "@usrv"

	out, stderr, code := o.ssh(target, "id -un; pwd; env")
	lines := strings.Split(out, "\n")
	if code != 0 || len(lines) < 3 || lines[0] != u.Username || lines[1] != u.HomeDir {
		t.Fatalf("id -un; pwd: %q (exit %d, stderr %q)", out, code, stderr)
	}
	for _, want := range []string{"USER=" + u.Username, "HOME=" + u.HomeDir, "PWD=" + u.HomeDir, "SHELL=/bin/bash", "SSH_CONNECTION=100.", "LOGNAME=" + u.Username} {
		if !strings.Contains(out, "\n"+want) {
			t.Errorf("env lacks %s:\n%s", want, out)
		}
	}
	if _, _, code := o.ssh(target, "exit 42"); code != 42 {
		t.Errorf("exit 42: %d", code)
	}
	if _, _, code := o.ssh(target, "no-such-command-tsc"); code != 127 {
		t.Errorf("missing command: %d, want 127", code)
	}
	if out, _, code := o.ssh(target, "-tt", "stty size; tty"); code != 0 || !strings.Contains(out, "/dev/pts/") {
		t.Errorf("-tt: %q exit %d", out, code)
	}

	// sftp: put, ls, get; files owned by the user; /etc/shadow unreadable.
	dir := t.TempDir()
	data := make([]byte, 1<<20)
	rand.Read(data)
	os.WriteFile(filepath.Join(dir, "f.bin"), data, 0o644)
	batch := fmt.Sprintf("put %s f.bin\nls\nget f.bin %s\n", filepath.Join(dir, "f.bin"), filepath.Join(dir, "back.bin"))
	out, stderr, code = o.run(strings.NewReader(batch), "sftp", "-b", "-", target)
	if code != 0 || !strings.Contains(out, "f.bin") {
		t.Fatalf("sftp: exit %d, %q, %q", code, out, stderr)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "back.bin")); !bytes.Equal(got, data) {
		t.Errorf("sftp round trip: %d bytes back", len(got))
	}
	if fi, err := os.Stat(filepath.Join(u.HomeDir, "f.bin")); err != nil || strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Uid)) != u.Uid {
		t.Errorf("f.bin in the home: %v, want owned by %s", err, u.Username)
	}
	_, stderr, code = o.run(strings.NewReader("get /etc/shadow "+filepath.Join(dir, "shadow")+"\n"), "sftp", "-b", "-", target)
	if code == 0 || !strings.Contains(stderr, "ermission denied") {
		t.Errorf("sftp get /etc/shadow: exit %d, %q", code, stderr)
	}

	// Another user: the non-root agent refuses with a message.
	_, stderr, code = o.ssh("root@usrv", "true")
	if code != 255 || !strings.Contains(stderr, "not root") && !strings.Contains(stderr, "can log in only as") {
		t.Errorf("root@ a non-root agent: exit %d, stderr %q; want a refusal that says why", code, stderr)
	}
	// -R 80 as a non-root user.
	_, stderr, code = o.ssh(target, "-o", "ExitOnForwardFailure=yes", "-R", "80:127.0.0.1:9", "true")
	if code == 0 || !strings.Contains(stderr, "remote port forwarding failed") {
		t.Errorf("-R 80: exit %d, %q", code, stderr)
	}
}

// TestOpenSSHRootAgent: a root agent in-process; scp 5 MiB both ways, -L and -A allowed by
// the accept defaults, `tsconnect ssh`, and `set --ssh=false` from inside a session.
func TestOpenSSHRootAgent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatalf("needs root (uid %d)", os.Geteuid())
	}
	tn := newTestNet(t)
	client := tn.startAgent("client")
	srv := tn.startAgent("srv")
	o := newOpenSSH(t, tn, client, "client", "srv")
	me, _ := user.Current()
	target := me.Username + "@srv"

	dir := t.TempDir()
	data := make([]byte, 5<<20)
	rand.Read(data)
	up := filepath.Join(dir, "up.bin")
	os.WriteFile(up, data, 0o644)
	remote := filepath.Join(t.TempDir(), "remote.bin")
	if _, stderr, code := o.run(nil, "scp", up, target+":"+remote); code != 0 {
		t.Fatalf("scp up: %d %s", code, stderr)
	}
	if got, _ := os.ReadFile(remote); !bytes.Equal(got, data) {
		t.Fatalf("scp up: %d bytes arrived", len(got))
	}
	if _, stderr, code := o.run(nil, "scp", target+":"+remote, filepath.Join(dir, "down.bin")); code != 0 {
		t.Fatalf("scp down: %d %s", code, stderr)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "down.bin")); !bytes.Equal(got, data) {
		t.Fatalf("scp down: %d bytes", len(got))
	}

	// -L to a port served on the target (loopback of this machine).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "hello over -L\n")
			c.Close()
		}
	}()
	if out, stderr, _ := o.ssh(target, "-W", ln.Addr().String()); out != "hello over -L\n" {
		t.Errorf("direct-tcpip (-W) to %s: %q, stderr %q", ln.Addr(), out, stderr)
	}

	// tsconnect ssh: host keys from the map, no prompt.
	cmd := exec.Command(tsconnectBin, "--socket", tn.sockets["client"], "ssh", target, "echo", "via-tsconnect-ssh")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "via-tsconnect-ssh") {
		t.Errorf("tsconnect ssh: %v, %q", err, out)
	}

	// set --ssh=false from inside a session: refused without --accept-risk.
	setCmd := tsconnectBin + " --socket " + tn.sockets["srv"] + " set --ssh=false"
	out, _, code := o.ssh(target, setCmd+" 2>&1; echo rc=$?")
	if !strings.Contains(out, "inside an SSH session") || !strings.Contains(out, "rc=1") || !srv.SSHEnabled() {
		t.Fatalf("set --ssh=false inside a session: %q (exit %d), ssh still on: %t", out, code, srv.SSHEnabled())
	}
	// With it: the session ends and port 22 stops answering.
	o.ssh(target, setCmd+" --accept-risk=lose-ssh; sleep 30")
	if srv.SSHEnabled() {
		t.Fatal("SSH still on after set --ssh=false --accept-risk=lose-ssh")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := client.Node().Dial(ctx, "tcp", "srv:22"); err == nil {
		c.Close()
		t.Error("port 22 still answers after set --ssh=false")
	}
	st := cli(t, "--socket", tn.sockets["srv"], "status", "--json")
	if !strings.Contains(st, `"ssh": false`) {
		t.Errorf("status after set --ssh=false: %s", st)
	}
	if out := cli(t, "--socket", tn.sockets["srv"], "set", "--ssh=true"); !strings.Contains(out, "ssh: true") {
		t.Errorf("set --ssh=true: %q", out)
	}
	if out, stderr, code := o.ssh(target, "echo back"); out != "back\n" {
		t.Errorf("after set --ssh=true: %q %q %d", out, stderr, code)
	}
}
