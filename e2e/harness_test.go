// Package e2e tests the whole system across its real parts on loopback: control with its
// relay, agents, native and wasm nodes, OpenSSH and Chromium.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"tsconnect/agent"
	"tsconnect/console"
	"tsconnect/control"
	"tsconnect/control/controltest"
	"tsconnect/controlws"
	"tsconnect/internal/eventually"
	"tsconnect/internal/nodetest"
	"tsconnect/internal/testclock"
	"tsconnect/node"
	"tsconnect/recorder"
	"tsconnect/recorder/recnode"
)

// tsconnectBin is the CLI built once for the tests that run it as a process.
var tsconnectBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tsconnect-e2e")
	if err != nil {
		panic(err)
	}
	os.Chmod(dir, 0o755) // tests run the binary as another user too
	tsconnectBin = filepath.Join(dir, "tsconnect")
	out, err := exec.Command("go", "build", "-o", tsconnectBin, "../cmd/tsconnect").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building tsconnect: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testNet is a control server (control/controltest, with its embedded relay) on loopback
// and its owner user.
type testNet struct {
	t     testing.TB
	cs    *controltest.Server
	dir   string
	url   string
	srv   *control.Server // the running one; restart replaces it
	owner control.User
	// clock is control's clock: advance it to expire keys, logins and checks.
	clock *testclock.Clock
	// sockets maps an agent's name to its local API socket.
	sockets map[string]string
}

// newTestNet starts control on a free loopback port with state in a temp dir.
func newTestNet(t testing.TB) *testNet {
	t.Helper()
	// The default policy asks for check mode, which holds logins for a web sign-in: the
	// tests run under one that lets users SSH to their own nodes (policy_test.go).
	return startTestNet(t, nil, ownNodesPolicy)
}

// startTestNet starts control, with config editing its configuration after the harness's
// own settings, makes the owner and sets policy.
func startTestNet(t testing.TB, config func(*control.Config), policy string) *testNet {
	t.Helper()
	clock := new(testclock.Clock)
	cs := controltest.New(t, &controltest.Options{Config: func(c *control.Config) {
		c.Now, c.EphemeralGrace = clock.Now, 2*time.Second
		if config != nil {
			config(c)
		}
	}})
	tn := &testNet{t: t, cs: cs, dir: cs.Dir, url: cs.URL, srv: cs.Control, clock: clock, sockets: map[string]string{}}
	tn.owner = cs.User("alice@example.com", control.RoleAdmin)
	if _, err := tn.srv.SetPolicy(context.Background(), []byte(policy), "e2e harness"); err != nil {
		t.Fatal(err)
	}
	return tn
}

// stop stops control and its listener: nodes find nothing listening.
func (tn *testNet) stop() { tn.cs.Close() }

// restart stops control and starts it again on the same port and state.
func (tn *testNet) restart() {
	tn.t.Helper()
	tn.cs.Restart()
	tn.srv = tn.cs.Control
}

// authKey makes an auth key owned by the test user.
func (tn *testNet) authKey(o control.AuthKeyOptions) string {
	tn.t.Helper()
	if o.User == 0 && len(o.Tags) == 0 {
		o.User = tn.owner.ID
	}
	secret, _, err := tn.srv.CreateAuthKey(context.Background(), o)
	if err != nil {
		tn.t.Fatal(err)
	}
	return secret
}

// serveAdmin serves the admin API of the running control on its admin socket (DIR/admin.sock)
// until the test ends, for the CLI's admin commands.
func (tn *testNet) serveAdmin(t *testing.T) {
	t.Helper()
	ln, err := control.ListenAdmin(tn.dir)
	if err != nil {
		t.Fatal(err)
	}
	con, err := console.New(tn.srv, console.Options{ServerURL: tn.url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { con.Close() })
	go con.ServeAdmin(ln) // ends when the console closes
}

// startAgent runs an SSH-serving agent in-process, registered with a fresh key of the owner.
// startRecorder starts a recorder node "rec" tagged tag:rec (no free-space floor), closed when
// the test ends.
func (tn *testNet) startRecorder(ctx context.Context) *recnode.Recorder {
	tn.t.Helper()
	rec, err := recnode.Start(ctx, recnode.Config{ControlURL: tn.url, AuthKey: tn.authKey(control.AuthKeyOptions{Tags: []string{"tag:rec"}}),
		Hostname: "rec", StateDir: tn.t.TempDir(), Store: recorder.Options{MinFree: -1}, Logf: prefixed(tn.t, "rec: ")})
	if err != nil {
		tn.t.Fatal(err)
	}
	tn.t.Cleanup(func() { rec.Close() })
	return rec
}

func (tn *testNet) startAgent(name string) *agent.Agent {
	tn.t.Helper()
	return tn.startAgentKey(name, tn.authKey(control.AuthKeyOptions{}))
}

// startAgentKey runs an SSH-serving agent registered with key; its local API socket is
// tn.sockets[name] and its SFTP child the tsconnect binary (its own executable is a test binary).
func (tn *testNet) startAgentKey(name, key string) *agent.Agent {
	tn.t.Helper()
	return tn.startAgentWith(name, key, nil)
}

// startAgentWith is startAgentKey with edit, if non-nil, changing the agent's Config first.
func (tn *testNet) startAgentWith(name, key string, edit func(*agent.Config)) *agent.Agent {
	tn.t.Helper()
	dir := tn.t.TempDir()
	cfg := agent.Config{
		ControlURL: tn.url, AuthKey: key, Hostname: name,
		StateDir: dir, SocketPath: filepath.Join(dir, "agent.sock"), SSH: true, Logf: prefixed(tn.t, name+": "),
		SFTPServer: []string{tsconnectBin, "sftp-server"},
	}
	if edit != nil {
		edit(&cfg)
	}
	a, err := agent.New(cfg)
	if err != nil {
		tn.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		tn.t.Fatal(err)
	}
	tn.t.Cleanup(func() { a.Close() })
	tn.sockets[name] = filepath.Join(dir, "agent.sock")
	return a
}

// startNode joins an in-memory client node (like the browser's) with an ephemeral key.
func (tn *testNet) startNode(name string) *node.Node {
	tn.t.Helper()
	return tn.startNodeKey(name, tn.authKey(control.AuthKeyOptions{Ephemeral: true}))
}

// startNodeKey joins an in-memory client node registered with key.
func (tn *testNet) startNodeKey(name, key string) *node.Node {
	tn.t.Helper()
	return startNodeAt(tn.t, tn.url, key, name)
}

// startNodeAt joins an in-memory client node (like the browser's) to the control at url with
// key; it closes when the test ends.
func startNodeAt(t testing.TB, url, key, name string) *node.Node {
	t.Helper()
	return nodetest.Join(t, url, key, name)
}

func prefixed(t testing.TB, p string) func(string, ...any) {
	return func(f string, a ...any) { t.Logf(p+f, a...) }
}

// waitPeer waits until n's map has a peer named name that serves SSH.
func waitPeer(t testing.TB, n *node.Node, name string) controlws.Node {
	t.Helper()
	var p controlws.Node
	eventually.True(t, fmt.Sprintf("peer %q to appear with SSH in the map", name), func() bool {
		nm := n.NetMap()
		if nm == nil {
			return false
		}
		var ok bool
		p, ok = nm.PeerByName(name)
		return ok && p.SSH && len(p.SSHHostKeys) > 0
	})
	return p
}

// pinnedHostKeys accepts exactly the host keys the map publishes for p.
func pinnedHostKeys(p controlws.Node) ssh.HostKeyCallback {
	return func(_ string, _ net.Addr, k ssh.PublicKey) error {
		for _, line := range p.SSHHostKeys {
			pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
			if err == nil && bytes.Equal(pk.Marshal(), k.Marshal()) {
				return nil
			}
		}
		return errors.New("host key not in the network map")
	}
}

// sshDial opens an SSH connection from n to the peer name as the current user.
func sshDial(t testing.TB, n *node.Node, name string) *ssh.Client {
	t.Helper()
	p := waitPeer(t, n, name)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nc, err := n.Dial(ctx, "tcp", name+":22")
	if err != nil {
		t.Fatal(err)
	}
	c, chans, reqs, err := ssh.NewClientConn(nc, name+":22", &ssh.ClientConfig{
		User: currentUser(t), HostKeyCallback: pinnedHostKeys(p), Timeout: 20 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	cl := ssh.NewClient(c, chans, reqs)
	t.Cleanup(func() { cl.Close() })
	return cl
}

// run executes cmd with stdin and returns stdout and the exit code.
func run(t testing.TB, cl *ssh.Client, cmd string, stdin io.Reader) ([]byte, int) {
	t.Helper()
	s, err := cl.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdin, s.Stdout, s.Stderr = stdin, &out, &errb
	err = s.Run(cmd)
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return out.Bytes(), 0
	case errors.As(err, &ee):
		return out.Bytes(), ee.ExitStatus()
	default:
		t.Fatalf("ssh %q: %v (stderr %q)", cmd, err, errb.String())
		return nil, -1
	}
}

func currentUser(t testing.TB) string {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}
