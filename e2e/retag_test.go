package e2e

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"tsconnect/control"
	"tsconnect/internal/syncbuf"
)

// retagPolicy lets users SSH to their own devices only (as root too); tagged prod servers
// take bob as root. Alice owns tag:prod.
const retagPolicy = `{
	"tagOwners": {"tag:prod": ["alice@example.com"]},
	"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
	"ssh": [
		{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["autogroup:nonroot", "root"]},
		{"action": "accept", "src": ["bob@example.com"], "dst": ["tag:prod"], "users": ["root"]},
	],
}`

// liveSession starts a shell command with a background job on cl and returns its stderr,
// the job's PID and a channel that gets the session's end.
func liveSession(t *testing.T, cl *ssh.Client) (*syncbuf.Buffer, int, <-chan error) {
	t.Helper()
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
	return &stderr, pid, done
}

// nodeID finds a live node by name through the Go API.
func (tn *testNet) nodeID(name string) int64 {
	tn.t.Helper()
	ns, err := tn.srv.Nodes(context.Background())
	if err != nil {
		tn.t.Fatal(err)
	}
	for _, n := range ns {
		if n.Name == name {
			return n.ID
		}
	}
	tn.t.Fatalf("no node %q", name)
	return 0
}

// gone reports whether process pid no longer runs (or is a zombie).
func gone(pid int) bool {
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil || syscall.Kill(pid, 0) != nil {
		return true
	}
	_, rest, ok := strings.Cut(string(st), ") ")
	return ok && strings.HasPrefix(rest, "Z")
}

// TestRetagRevokes: alice has a live root shell from her laptop on her own server (allowed:
// her own device). An admin tags the server tag:prod; it no longer belongs to her, so the
// agent cuts the session with "Access revoked." and its background job is gone. Then bob,
// whom the policy lets onto tag:prod, has a live shell there, and deleting bob ends it and
// removes his nodes.
func TestRetagRevokes(t *testing.T) {
	tn, alice, bob := newPolicyNet(t, retagPolicy, "admin")
	ctx := context.Background()
	tn.startAgentKey("server", tn.authKey(control.AuthKeyOptions{User: alice.ID}))
	laptop := tn.startNodeKey("laptop", tn.authKey(control.AuthKeyOptions{User: alice.ID, Ephemeral: true}))

	cl, _, err := sshTry(t, laptop, "server", "root")
	if err != nil {
		t.Fatalf("alice to her own server as root: %v", err)
	}
	stderr, pid, done := liveSession(t, cl)

	// The admin acts through the CLI on control's admin socket.
	tn.serveAdmin(t)
	serverID := strconv.FormatInt(tn.nodeID("server"), 10)

	// Bob does not own tag:prod: he may not tag the server, and the session lives on.
	out, err := exec.Command(tsconnectBin, "nodes", "tag", "--state", tn.dir, "--by", "bob@example.com", serverID, "tag:prod").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "may not apply tag:prod") {
		t.Fatalf("bob tags the server: %v %s; want refused, naming tag:prod", err, out)
	}
	start := time.Now()
	out2 := cli(t, "nodes", "tag", "--state", tn.dir, serverID, "tag:prod")
	if !strings.Contains(out2, "tagged tag:prod") {
		t.Fatalf("admin tags the server: %q", out2)
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("alice's session outlived the retag that revoked it")
	}
	t.Logf("admin runs `tsconnect nodes tag` → live session cut: %v (includes starting the CLI process)", time.Since(start))
	if !strings.Contains(stderr.String(), "Access revoked.") {
		t.Errorf("stderr of the revoked session: %q; want \"Access revoked.\"", stderr.String())
	}
	waitGone(t, pid)
	if _, banner, err := sshTry(t, laptop, "server", "root"); err == nil || !strings.Contains(banner, "not permitted") {
		t.Errorf("alice to the tagged server: err %v, banner %q; want refused", err, banner)
	}

	// Bob may SSH to tag:prod; deleting him ends his session and removes his nodes.
	tn.startAgentKey("bobbox", tn.authKey(control.AuthKeyOptions{User: bob.ID}))
	bobs := tn.startNodeKey("bobs", tn.authKey(control.AuthKeyOptions{User: bob.ID, Ephemeral: true}))
	bcl, _, err := sshTry(t, bobs, "server", "root")
	if err != nil {
		t.Fatalf("bob to the tagged server as root: %v", err)
	}
	_, bpid, bdone := liveSession(t, bcl)
	start = time.Now()
	if out := cli(t, "users", "delete", "--state", tn.dir, "bob@example.com"); !strings.Contains(out, "2 nodes deleted") {
		t.Fatalf("tsconnect users delete: %q; want his two nodes deleted", out)
	}
	for deadline := time.Now().Add(20 * time.Second); !gone(bpid); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("bob's background job %d outlived his deletion", bpid)
		}
	}
	t.Logf("`tsconnect users delete` → their session's processes gone on the server: %v", time.Since(start))
	select {
	case <-bdone:
	case <-time.After(20 * time.Second):
		t.Fatal("bob's SSH session did not end after his deletion")
	}
	t.Logf("`tsconnect users delete` → their SSH client sees the session end: %v", time.Since(start))
	ns, err := tn.srv.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if n.Name == "bobbox" || n.Name == "bobs" {
			t.Errorf("bob's node %s still listed after his deletion", n.Name)
		}
	}
	if _, err := tn.srv.UserByEmail(ctx, "bob@example.com"); err == nil {
		t.Error("bob still exists")
	}
}
