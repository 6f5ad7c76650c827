package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"tsconnect/control"
	"tsconnect/internal/syncbuf"
	"tsconnect/node"
)

// ownNodesPolicy lets every user SSH to their own nodes as any user, root included,
// without check mode (which the default policy asks for; check_test.go covers it).
const ownNodesPolicy = `{
	"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
	"ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["autogroup:nonroot", "root"]}],
}`

// policyV1: members reach the tagged server on port 22 only; alice reaches her own nodes
// on port 80 only (so her laptop sees her devbox, but cannot SSH there although an ssh
// rule names it); alice may SSH to the server as root, bob only in check mode.
const policyV1 = `{
	"tagOwners": {"tag:server": ["alice@example.com"]},
	"acls": [
		{"action": "accept", "src": ["autogroup:member"], "dst": ["tag:server:22"]},
		{"action": "accept", "src": ["alice@example.com"], "dst": ["alice@example.com:80"]},
	],
	"ssh": [
		{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:server"], "users": ["root"]},
		{"action": "check", "src": ["bob@example.com"], "dst": ["tag:server"], "users": ["root"]},
		{"action": "accept", "src": ["alice@example.com"], "dst": ["autogroup:self"], "users": ["root"]},
	],
}`

// policyV2 drops alice's rule for the server.
var policyV2 = strings.Replace(policyV1,
	`{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:server"], "users": ["root"]},`, "", 1)

// sshTry logs in from n to peer name as user and returns the client (nil when refused),
// the auth banners shown and the handshake error.
func sshTry(t testing.TB, n *node.Node, name, user string) (*ssh.Client, string, error) {
	t.Helper()
	p := waitPeer(t, n, name)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nc, err := n.Dial(ctx, "tcp", name+":22")
	if err != nil {
		t.Fatalf("dial %s:22: %v", name, err)
	}
	var banners strings.Builder
	c, chans, reqs, err := ssh.NewClientConn(nc, name+":22", &ssh.ClientConfig{
		User: user, HostKeyCallback: pinnedHostKeys(p), Timeout: 20 * time.Second,
		BannerCallback: func(m string) error { banners.WriteString(m); return nil },
	})
	if err != nil {
		nc.Close()
		return nil, banners.String(), err
	}
	cl := ssh.NewClient(c, chans, reqs)
	t.Cleanup(func() { cl.Close() })
	return cl, banners.String(), nil
}

// newPolicyNet is a network with alice (its admin owner) and bob (a member) under policy,
// written by author. Its agents map logins to root, so it needs root: without it the test fails.
func newPolicyNet(t *testing.T, policy, author string) (tn *testNet, alice, bob control.User) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the agent maps logins to root here: run the tests as root")
	}
	tn = newTestNet(t)
	ctx := context.Background()
	bob, err := tn.srv.CreateUser(ctx, "bob@example.com", control.RoleMember)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tn.srv.SetPolicy(ctx, []byte(policy), author); err != nil {
		t.Fatal(err)
	}
	return tn, tn.owner, bob
}

// TestPolicySSH runs two users, a tagged server and a user's own device under a policy:
// the allowed user gets a shell, the others the right banner; a peer in the map whose port
// 22 is not allowed cannot even finish a TCP handshake; and a policy write cuts a live
// session, background jobs included, with "Access revoked.".
func TestPolicySSH(t *testing.T) {
	tn, alice, bob := newPolicyNet(t, policyV1, "alice")
	ctx := context.Background()
	// Bob may not make a key for tag:server (he is no owner); alice may.
	if _, _, err := tn.srv.CreateAuthKey(ctx, control.AuthKeyOptions{Tags: []string{"tag:server"}, CreatedBy: bob.ID}); err == nil {
		t.Fatal("bob made a tag:server key without owning the tag")
	}
	serverKey, _, err := tn.srv.CreateAuthKey(ctx, control.AuthKeyOptions{User: alice.ID, Tags: []string{"tag:server"}, CreatedBy: alice.ID})
	if err != nil {
		t.Fatal(err)
	}
	tn.startAgentKey("server", serverKey)
	tn.startAgentKey("devbox", tn.authKey(control.AuthKeyOptions{User: alice.ID}))
	laptop := tn.startNodeKey("laptop", tn.authKey(control.AuthKeyOptions{User: alice.ID, Ephemeral: true}))
	bobKey, _, err := tn.srv.CreateAuthKey(ctx, control.AuthKeyOptions{User: bob.ID, Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	bobs := tn.startNodeKey("bobs", bobKey)

	// Alice gets a shell on the tagged server as root.
	cl, _, err := sshTry(t, laptop, "server", "root")
	if err != nil {
		t.Fatalf("alice to server as root: %v", err)
	}
	if out, code := run(t, cl, "id -un", nil); string(out) != "root\n" || code != 0 {
		t.Fatalf("alice's shell: %q exit %d", out, code)
	}

	// Refusals: a banner that says why, then the auth failure. (Bob as root is held for
	// check mode: TestCheckModeHold covers that.)
	for _, c := range []struct{ who, user, want string }{
		{"bob", "nobody", `policy does not permit SSH as user "nobody"`},
		{"alice", "daemon", `policy does not permit SSH as user "daemon"`},
	} {
		from := map[string]*node.Node{"alice": laptop, "bob": bobs}[c.who]
		_, banner, err := sshTry(t, from, "server", c.user)
		if err == nil || !strings.Contains(err.Error(), "unable to authenticate") || !strings.Contains(banner, c.want) {
			t.Errorf("%s to server as %s: err %v, banner %q; want refused with a banner containing %q", c.who, c.user, err, banner, c.want)
		}
	}
	// Bob may not talk to alice's devbox at all: it is not even in his map.
	if _, ok := bobs.NetMap().PeerByName("devbox"); ok {
		t.Error("bob's map lists alice's devbox, which he may not reach in either direction")
	}

	// Asymmetric ACL: devbox is in the laptop's map (port 80 is allowed) and an ssh rule
	// names it, but port 22 is not allowed: devbox's filter answers the SYN with a reset, so
	// the dial fails at once instead of timing out.
	waitPeer(t, laptop, "devbox")
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	t0 := time.Now()
	if c, err := laptop.Dial(dctx, "tcp", "devbox:22"); err == nil {
		c.Close()
		t.Error("TCP to devbox:22 connected; the policy does not allow port 22 there")
	} else if took := time.Since(t0); !strings.Contains(err.Error(), "refused") || took > 3*time.Second {
		t.Errorf("TCP to devbox:22 (refused by its policy): %v after %v; want connection refused within 3 s", err, took)
	}
	cancel()
	dctx, cancel = context.WithTimeout(ctx, 10*time.Second)
	_, err = laptop.Dial(dctx, "tcp", "devbox:80")
	cancel()
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("TCP to devbox:80 (allowed, nothing listens): %v; want connection refused, proof the path works", err)
	}

	// A live session with a background job; then a policy write revokes alice's access.
	s, err := cl.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr syncbuf.Buffer
	s.Stdout, s.Stderr = &stdout, &stderr
	if err := s.Start("sleep 300 & echo $!; wait"); err != nil {
		t.Fatal(err)
	}
	pid := waitPID(t, &stdout)
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()

	start := time.Now()
	if _, err := tn.srv.SetPolicy(ctx, []byte(policyV2), "alice"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the session outlived the policy write that revoked it")
	}
	cut := time.Since(start)
	t.Logf("policy write → live session cut: %v", cut)
	if !strings.Contains(stderr.String(), "Access revoked.") {
		t.Errorf("stderr of the revoked session: %q; want \"Access revoked.\"", stderr.String())
	}
	waitGone(t, pid)

	// And a new login is refused, with the reason.
	if _, banner, err := sshTry(t, laptop, "server", "root"); err == nil || !strings.Contains(banner, "not permitted") {
		t.Errorf("alice to server after the write: err %v, banner %q; want refused", err, banner)
	}
}

func waitPID(t *testing.T, out *syncbuf.Buffer) int {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if line, _, ok := strings.Cut(out.String(), "\n"); ok {
			pid, err := strconv.Atoi(line)
			if err != nil {
				t.Fatalf("session printed %q, want a PID", line)
			}
			return pid
		}
	}
	t.Fatal("the session never printed its background job's PID")
	return 0
}

// waitGone waits until process pid no longer runs (gone, or a zombie nobody reaped).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		st, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		if err != nil || syscall.Kill(pid, 0) != nil {
			return
		}
		if _, rest, ok := strings.Cut(string(st), ") "); ok && strings.HasPrefix(rest, "Z") {
			return
		}
	}
	t.Errorf("background job %d of the revoked session still runs", pid)
}
