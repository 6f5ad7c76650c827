//go:build linux

package e2e

import (
	"bufio"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"tsconnect/control"
)

// TestCheckModeControlRestart: control (with its embedded relay) restarts while bob's SSH
// login is held under a check rule. The agent keeps the SSH connection, asks again on its new
// control connection and waits on the same check: the URL shown before the restart still
// works, approving it lets the held login into a shell, and no second URL is shown.
func TestCheckModeControlRestart(t *testing.T) {
	tn, alice, bob := newPolicyNet(t, checkModePolicy, "alice")
	ctx := context.Background()
	serverKey, _, err := tn.srv.CreateAuthKey(ctx, control.AuthKeyOptions{User: alice.ID, Tags: []string{"tag:server"}, CreatedBy: alice.ID})
	if err != nil {
		t.Fatal(err)
	}
	tn.startAgentKey("server", serverKey)
	bobs := tn.startNodeKey("bobs", tn.authKey(control.AuthKeyOptions{User: bob.ID}))

	h := startLogin(t, bobs, "server", "root")
	_, _, id := h.waitCheckURL(t)
	tn.restart()
	if info, err := tn.srv.PendingCheck(ctx, id); err != nil || info.User.ID != bob.ID {
		t.Fatalf("the check after control restarted: %+v, %v; want bob's check still pending", info, err)
	}
	// Give the agent time to ask again on its new connection (it waits on the stored check),
	// then approve the URL shown before the restart.
	time.Sleep(3 * time.Second)
	t0 := time.Now()
	if err := tn.srv.CompleteCheck(ctx, id, bob.ID, control.AuthPassword); err != nil {
		t.Fatalf("approving the check URL shown before the restart: %v", err)
	}
	h.wait(t)
	t.Logf("CompleteCheck after a restart → SSH login accepted: %v", time.Since(t0))
	if h.err != nil {
		t.Fatalf("held login after the restart and CompleteCheck: %v (banners %q)", h.err, h.banner.String())
	}
	if n := strings.Count(h.banner.String(), "/check/"); n != 1 {
		t.Errorf("banners %q: %d check URLs, want the one shown before the restart", h.banner.String(), n)
	}
	if out, code := run(t, h.client, "id -un", nil); string(out) != "root\n" || code != 0 {
		t.Fatalf("shell after the check: %q exit %d", out, code)
	}
}

// upProcess is `tsconnect up` without an auth key, as a process: its login URLs' IDs come on
// ids, up is closed once it says the node is up, and rewait once it says it waits again on
// a control that came back.
type upProcess struct {
	cmd    *exec.Cmd
	ids    chan string
	up     chan struct{}
	rewait chan struct{}
	out    strings.Builder // read after the process ended
}

var loginURLRe = regexp.MustCompile(`^\s*(http://\S+/login/([0-9a-f]{32}))\s*$`)

func startUp(t *testing.T, controlURL, dir string) *upProcess {
	t.Helper()
	p := &upProcess{ids: make(chan string, 4), up: make(chan struct{}), rewait: make(chan struct{})}
	p.cmd = exec.Command(tsconnectBin, "--socket", filepath.Join(dir, "agent.sock"), "up", "--login-server", controlURL,
		"--hostname", "interactive", "--state", filepath.Join(dir, "state"))
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Signal(syscall.SIGTERM); p.cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(stderr)
		rewaited := false
		for sc.Scan() {
			p.out.WriteString(sc.Text() + "\n")
			if m := loginURLRe.FindStringSubmatch(sc.Text()); m != nil {
				p.ids <- m[2]
			}
			if strings.Contains(sc.Text(), "up: node interactive") {
				close(p.up)
			}
			if strings.Contains(sc.Text(), "still waiting for the sign-in") && !rewaited {
				close(p.rewait)
				rewaited = true
			}
		}
	}()
	return p
}

func (p *upProcess) loginID(t *testing.T) string {
	t.Helper()
	select {
	case id := <-p.ids:
		return id
	case <-time.After(30 * time.Second):
		t.Fatal("tsconnect up printed no login URL within 30 s")
	}
	return ""
}

// TestUpInteractiveLoginControlRestart: control restarts while `tsconnect up` waits for a
// sign-in at its URL. The URL shown before the restart still works: signing in there
// registers the machine, and the `tsconnect up` started again on the same state (which
// shows a URL of its own meanwhile) comes up as that node, the only one of that name.
func TestUpInteractiveLoginControlRestart(t *testing.T) {
	tn := newTestNet(t)
	ctx := context.Background()
	dir := t.TempDir()
	first := startUp(t, tn.url, dir)
	id := first.loginID(t)
	tn.restart()
	if info, err := tn.srv.PendingLogin(ctx, id); err != nil || info.Hostname != "interactive" {
		t.Fatalf("the login after control restarted: %+v, %v; want it still pending", info, err)
	}
	first.cmd.Process.Signal(syscall.SIGTERM)
	first.cmd.Wait()
	again := startUp(t, tn.url, dir)
	if id2 := again.loginID(t); id2 == id {
		t.Fatalf("the new process got the same login ID")
	}
	if err := tn.srv.CompleteLogin(ctx, id, tn.owner.ID); err != nil {
		t.Fatalf("signing in at the URL shown before the restart: %v", err)
	}
	select {
	case <-again.up:
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not come up after the sign-in at the old URL")
	}
	nodes, err := tn.srv.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, n := range nodes {
		if strings.HasPrefix(n.Name, "interactive") {
			found++
			if n.User != tn.owner.ID || len(n.Tags) != 0 {
				t.Errorf("node %+v: want %s's untagged node", n, tn.owner.Email)
			}
		}
	}
	if found != 1 {
		t.Fatalf("%d nodes named interactive* among %+v, want 1", found, nodes)
	}
}

// TestUpInteractiveLoginRedialsControl: control restarts while `tsconnect up` waits for a
// sign-in; the same process redials, keeps waiting without showing another URL, and comes
// up once the sign-in at the URL it showed before is done (no need to run it again).
func TestUpInteractiveLoginRedialsControl(t *testing.T) {
	tn := newTestNet(t)
	ctx := context.Background()
	up := startUp(t, tn.url, t.TempDir())
	id := up.loginID(t)
	tn.restart()
	select {
	case <-up.rewait: // its register is back: a second pending login of the same machine
	case <-time.After(30 * time.Second):
		t.Fatal("tsconnect up did not wait again on the restarted control")
	}
	if err := tn.srv.CompleteLogin(ctx, id, tn.owner.ID); err != nil {
		t.Fatalf("signing in at the URL shown before the restart: %v", err)
	}
	select {
	case <-up.up:
	case id2 := <-up.ids:
		t.Fatalf("tsconnect up showed another sign-in URL (%s) after control came back", id2)
	case <-time.After(30 * time.Second):
		t.Fatalf("tsconnect up did not come up after the sign-in at its first URL:\n%s", up.out.String())
	}
}
