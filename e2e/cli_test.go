package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"tsconnect/console/api"
	"tsconnect/internal/syncbuf"
)

// proc is a tsconnect process run by a test.
type proc struct {
	cmd *exec.Cmd
	out *syncbuf.Buffer // written by the process's output copiers while the test reads it
}

func startProc(t testing.TB, args ...string) *proc { t.Helper(); return startProcEnv(t, nil, args...) }

// startProcEnv is startProc with variables added to the environment.
func startProcEnv(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(tsconnectBin, args...)
	cmd.Env = append(os.Environ(), env...)
	return startCmd(t, cmd, "tsconnect "+strings.Join(args, " "))
}

// startCmd starts cmd with its output captured; it is killed when the test ends, and its
// output (under label) shown if the test failed.
func startCmd(t testing.TB, cmd *exec.Cmd, label string) *proc {
	t.Helper()
	p := &proc{cmd: cmd, out: &syncbuf.Buffer{}}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", label, p.out)
		}
	})
	return p
}

// cliOwnNodesPolicy sets, through the CLI and the admin socket of the control in dir, the
// policy that lets users SSH to their own nodes (the default asks for check mode, a web sign-in).
func cliOwnNodesPolicy(t testing.TB, dir string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "policy.hujson")
	if err := os.WriteFile(f, []byte(ownNodesPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	cli(t, "policy", "set", "--state", dir, f)
}

// cli runs tsconnect to completion and returns its stdout; it fails the test on error.
func cli(t testing.TB, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(tsconnectBin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tsconnect %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func freePort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitHTTP(t testing.TB, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200", url)
}

// TestCLIControlKilled drives the CLI contract: control as a process, users and keys made
// through its admin socket, an agent from `tsconnect up`; then control is killed with
// SIGKILL mid-session and restarted: the session goes on, nodes and keys are still there.
func TestCLIControlKilled(t *testing.T) {
	dir, adir := t.TempDir(), t.TempDir()
	sock := filepath.Join(adir, "agent.sock")
	addr := freePort(t)
	url := "http://" + addr
	ctrl := startProc(t, "control", "--listen", addr, "--state", dir)
	waitHTTP(t, url+"/")

	cli(t, "users", "create", "--state", dir, "alice@example.com")
	cliOwnNodesPolicy(t, dir)
	agentKey := lastLine(cli(t, "keys", "create", "--state", dir, "--user", "alice@example.com"))
	if !strings.HasPrefix(agentKey, "tskey-") {
		t.Fatalf("keys create printed %q as its last line", agentKey)
	}
	startProc(t, "--socket", sock, "up", "--ssh", "--hostname", "server", "--login-server", url, "--auth-key", agentKey, "--state", adir)
	waitStatus(t, sock, "server")

	// A used key, through the CLI: a clear error, nothing registered.
	out, err := exec.Command(tsconnectBin, "--socket", filepath.Join(t.TempDir(), "s"), "up", "--login-server", url,
		"--auth-key", agentKey, "--state", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "used") {
		t.Fatalf("up with a used key: err=%v, output:\n%s", err, out)
	}

	clientKey := lastLine(cli(t, "keys", "create", "--state", dir, "--user", "alice@example.com", "--ephemeral", "--description", "client for the CLI test"))
	n := startNodeAt(t, url, clientKey, "laptop")
	cl := sshDial(t, n, "server")
	if out, _ := run(t, cl, "echo before", nil); string(out) != "before\n" {
		t.Fatalf("before the kill: %q", out)
	}

	ctrl.cmd.Process.Signal(syscall.SIGKILL)
	ctrl.cmd.Wait()
	startProc(t, "control", "--listen", addr, "--state", dir)
	waitHTTP(t, url+"/")

	if out, code := run(t, cl, "echo after", nil); string(out) != "after\n" || code != 0 {
		t.Fatalf("after control was killed and restarted: %q exit %d", out, code)
	}
	var nodes []api.Node
	if err := json.Unmarshal([]byte(cli(t, "nodes", "--state", dir, "--json")), &nodes); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, nd := range nodes {
		names[nd.Name] = true
		if nd.Hostname != nd.Name || len(nd.Key) != 64 {
			t.Errorf("nodes --json: %s has hostname %q, key %q; want its reported host name and its node key", nd.Name, nd.Hostname, nd.Key)
		}
	}
	if len(nodes) != 2 || !names["server"] || !names["laptop"] {
		t.Fatalf("after SIGKILL and restart, nodes = %+v; want server and laptop", nodes)
	}
	if keys := cli(t, "keys", "list", "--state", dir); strings.Count(keys, "used=true") != 2 || !strings.Contains(keys, "client for the CLI test") {
		t.Fatalf("keys after restart:\n%s", keys)
	}
	waitStatus(t, sock, "laptop")
}

// waitStatus waits until `tsconnect status` through sock lists a node named name.
func waitStatus(t testing.TB, sock, name string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var out []byte
	for time.Now().Before(deadline) {
		out, _ = exec.Command(tsconnectBin, "--socket", sock, "status").CombinedOutput()
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) > 1 && f[1] == name {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("status never listed %q:\n%s", name, out)
}

// TestLocalAPIPeerCred: the agent's socket is 0600, and even with the mode opened up,
// another local user is refused by the SO_PEERCRED check. Needs root to act as another user.
func TestLocalAPIPeerCred(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("this test needs root (it runs a command as user nobody); run the tests as root")
	}
	tn := newTestNet(t)
	tn.startAgent("server")
	sock := tn.sockets["server"]
	st, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want 0600", st.Mode().Perm())
	}
	cli(t, "--socket", sock, "status") // root may
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Dir(sock), filepath.Dir(filepath.Dir(sock))} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	cmd := exec.Command(tsconnectBin, "--socket", sock, "status")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	cmd.Env = []string{"HOME=/"}
	out, err := cmd.CombinedOutput()
	// The command ran as nobody and reached the socket (no "permission denied"), and the
	// agent hung up on it: the refusal is the SO_PEERCRED check's.
	if err == nil || strings.Contains(string(out), "server") || !strings.Contains(string(out), "tsconnect status") ||
		strings.Contains(string(out), "permission denied") {
		t.Fatalf("user nobody and the agent's socket: err=%v\n%s", err, out)
	}
}
