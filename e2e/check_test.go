//go:build linux

package e2e

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"tsconnect/agent"
	"tsconnect/control"
	"tsconnect/derpws"
	"tsconnect/internal/eventually"
	"tsconnect/key"
	"tsconnect/node"
)

// checkModePolicy: members may SSH to the tagged server as root after re-authenticating
// within the hour.
const checkModePolicy = `{
	"tagOwners": {"tag:server": ["alice@example.com"]},
	"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
	"ssh": [{"action": "check", "src": ["autogroup:member"], "dst": ["tag:server"], "users": ["root"], "checkPeriod": "1h"}],
}`

var checkURLRe = regexp.MustCompile(`re-authenticate as (\S+)\. Visit: (http://\S+/check/([0-9a-f]{32}))`)

// heldLogin is an SSH login from a node in flight: its banners arrive on banners.
type heldLogin struct {
	banners chan string
	done    chan struct{}
	err     error
	banner  strings.Builder // all banners; read after done
	client  *ssh.Client     // set when logged in; read after done
	nc      net.Conn        // the client's connection
}

// startLogin dials from n to peer name as user in the background.
func startLogin(t *testing.T, n *node.Node, name, user string) *heldLogin {
	t.Helper()
	p := waitPeer(t, n, name)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nc, err := n.Dial(ctx, "tcp", name+":22")
	if err != nil {
		t.Fatalf("dial %s:22: %v", name, err)
	}
	h := &heldLogin{banners: make(chan string, 8), done: make(chan struct{}), nc: nc}
	go func() {
		defer close(h.done)
		c, chans, reqs, err := ssh.NewClientConn(nc, name+":22", &ssh.ClientConfig{
			User: user, HostKeyCallback: pinnedHostKeys(p),
			BannerCallback: func(m string) error {
				h.banner.WriteString(m)
				h.banners <- m
				return nil
			},
		})
		if err != nil {
			nc.Close()
			h.err = err
			return
		}
		h.client = ssh.NewClient(c, chans, reqs)
	}()
	t.Cleanup(func() {
		nc.Close()
		<-h.done
		if h.client != nil {
			h.client.Close()
		}
	})
	return h
}

// waitCheckURL waits for the check banner and returns the user it names and the check ID.
func (h *heldLogin) waitCheckURL(t *testing.T) (user, url, id string) {
	t.Helper()
	select {
	case b := <-h.banners:
		m := checkURLRe.FindStringSubmatch(b)
		if m == nil {
			t.Fatalf("banner %q: want the check URL", b)
		}
		return m[1], m[2], m[3]
	case <-h.done:
		t.Fatalf("login ended without a check banner: %v (banners %q)", h.err, h.banner.String())
	case <-time.After(30 * time.Second):
		t.Fatal("no check banner within 30 s")
	}
	return
}

func (h *heldLogin) wait(t *testing.T) {
	t.Helper()
	select {
	case <-h.done:
	case <-time.After(60 * time.Second):
		t.Fatal("held login not decided within 60 s")
	}
}

// TestCheckModeHold: bob's SSH login under a check rule is held with a banner naming him
// and the URL; completing the check lets the same connection in; a second login within
// the period goes straight in; alice's held login is refused when she declines; a policy
// change during a hold that makes the rule accept lets it in.
func TestCheckModeHold(t *testing.T) {
	tn, alice, bob := newPolicyNet(t, checkModePolicy, "alice")
	ctx := context.Background()
	serverKey, _, err := tn.srv.CreateAuthKey(ctx, control.AuthKeyOptions{User: alice.ID, Tags: []string{"tag:server"}, CreatedBy: alice.ID})
	if err != nil {
		t.Fatal(err)
	}
	tn.startAgentKey("server", serverKey)
	laptop := tn.startNodeKey("laptop", tn.authKey(control.AuthKeyOptions{User: alice.ID, Ephemeral: true}))
	bobs := tn.startNodeKey("bobs", tn.authKey(control.AuthKeyOptions{User: bob.ID, Ephemeral: true}))

	h := startLogin(t, bobs, "server", "root")
	who, url, id := h.waitCheckURL(t)
	if who != "bob@example.com" || !strings.HasPrefix(url, tn.url+"/check/") {
		t.Fatalf("check banner names %s at %s; want bob@example.com at %s/check/…", who, url, tn.url)
	}
	if err := tn.srv.CompleteCheck(ctx, id, alice.ID, control.AuthPassword); err == nil {
		t.Fatal("alice completed bob's check")
	}
	t0 := time.Now()
	if err := tn.srv.CompleteCheck(ctx, id, bob.ID, control.AuthPassword); err != nil {
		t.Fatal(err)
	}
	h.wait(t)
	t.Logf("CompleteCheck → SSH login accepted: %v", time.Since(t0))
	if h.err != nil {
		t.Fatalf("held login after CompleteCheck: %v (banners %q)", h.err, h.banner.String())
	}
	if out, code := run(t, h.client, "id -un", nil); string(out) != "root\n" || code != 0 {
		t.Fatalf("shell after the check: %q exit %d", out, code)
	}
	h.client.Close()

	// Within the hour: straight in, no banner.
	cl, banner, err := sshTry(t, bobs, "server", "root")
	if err != nil || banner != "" {
		t.Fatalf("second login within the period: err %v, banner %q; want in without a banner", err, banner)
	}
	cl.Close()

	// Alice declines: refused with a banner saying so.
	h = startLogin(t, laptop, "server", "root")
	_, _, id = h.waitCheckURL(t)
	if err := tn.srv.DeclineCheck(ctx, id); err != nil {
		t.Fatal(err)
	}
	h.wait(t)
	if h.err == nil || !strings.Contains(h.banner.String(), "alice@example.com declined the login") {
		t.Fatalf("declined login: err %v, banners %q; want refused saying alice declined", h.err, h.banner.String())
	}

	// A policy change during a hold re-evaluates it: now accept.
	h = startLogin(t, laptop, "server", "root")
	h.waitCheckURL(t)
	if _, err := tn.srv.SetPolicy(ctx, []byte(strings.Replace(checkModePolicy, `"action": "check", "src": ["autogroup:member"], "dst": ["tag:server"], "users": ["root"], "checkPeriod": "1h"`,
		`"action": "accept", "src": ["autogroup:member"], "dst": ["tag:server"], "users": ["root"]`, 1)), "alice"); err != nil {
		t.Fatal(err)
	}
	h.wait(t)
	if h.err != nil {
		t.Fatalf("held login after the policy turned to accept: %v (banners %q)", h.err, h.banner.String())
	}
	h.client.Close()
}

// TestCheckModeHangUp: an SSH client that hangs up during a hold makes the agent give the
// check up at once: control forgets it (the /check/{id} page then says unknown or expired)
// long before the verdict or the hold's 11-minute limit.
func TestCheckModeHangUp(t *testing.T) {
	tn, alice, bob := newPolicyNet(t, checkModePolicy, "alice")
	ctx := context.Background()
	serverKey, _, err := tn.srv.CreateAuthKey(ctx, control.AuthKeyOptions{User: alice.ID, Tags: []string{"tag:server"}, CreatedBy: alice.ID})
	if err != nil {
		t.Fatal(err)
	}
	tn.startAgentKey("server", serverKey)
	bobs := tn.startNodeKey("bobs", tn.authKey(control.AuthKeyOptions{User: bob.ID, Ephemeral: true}))

	h := startLogin(t, bobs, "server", "root")
	_, _, id := h.waitCheckURL(t)
	if _, err := tn.srv.PendingCheck(ctx, id); err != nil {
		t.Fatalf("check %s while held: %v", id, err)
	}
	t0 := time.Now()
	h.nc.Close()
	for {
		_, err := tn.srv.PendingCheck(ctx, id)
		if errors.Is(err, control.ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatalf("check after the client hung up: %v; want ErrNotFound", err)
		}
		if time.Since(t0) > 30*time.Second { // the hold itself lasts 11 minutes
			t.Fatal("control still has the check 30 s after the client hung up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("client hang-up → check dropped by control: %v", time.Since(t0))
	h.wait(t)
	if h.err == nil {
		t.Fatal("the hung-up login succeeded")
	}
	if err := tn.srv.CompleteCheck(ctx, id, bob.ID, control.AuthPassword); !errors.Is(err, control.ErrNotFound) {
		t.Fatalf("completing the dropped check: %v; want ErrNotFound", err)
	}
}

// TestCheckModeControlDown: control goes away during a hold: the agent retries for its
// CheckRetry, then refuses with a message.
func TestCheckModeControlDown(t *testing.T) {
	// The relay must outlive control: a standalone one, in process.
	relay := derpws.NewServer(key.NewPrivate(), &derpws.ServerOptions{Logf: t.Logf})
	rs := httptest.NewServer(relay)
	t.Cleanup(func() { rs.CloseClientConnections(); rs.Close(); relay.Close() })
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(rs.URL, "http://"))
	portN, _ := strconv.Atoi(port)
	tn := newTestNetWithMap(t, &derpws.Map{Regions: map[int]*derpws.Region{7: {RegionID: 7, RegionCode: "sa", RegionName: "standalone",
		Nodes: []*derpws.Node{{Name: "7a", RegionID: 7, HostName: host, DERPPort: portN, STUNPort: -1, InsecureForTests: true}}}}})
	ctx := context.Background()
	alice := tn.owner
	bob, err := tn.srv.CreateUser(ctx, "bob@example.com", control.RoleMember)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tn.srv.SetPolicy(ctx, []byte(checkModePolicy), "alice"); err != nil {
		t.Fatal(err)
	}
	serverKey, _, err := tn.srv.CreateAuthKey(ctx, control.AuthKeyOptions{User: alice.ID, Tags: []string{"tag:server"}, CreatedBy: alice.ID})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a, err := agent.New(agent.Config{ControlURL: tn.url, AuthKey: serverKey, Hostname: "server", StateDir: dir,
		SocketPath: filepath.Join(dir, "agent.sock"), SSH: true, Logf: prefixed(t, "server: "), CheckRetry: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := a.Start(sctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	bobs := tn.startNodeKey("bobs", tn.authKey(control.AuthKeyOptions{User: bob.ID, Ephemeral: true}))

	h := startLogin(t, bobs, "server", "root")
	h.waitCheckURL(t)
	tn.stop()
	h.wait(t)
	if h.err == nil || !strings.Contains(h.banner.String(), "control server is unreachable") {
		t.Fatalf("hold with control down: err %v, banners %q; want refused saying control is unreachable", h.err, h.banner.String())
	}
}

// TestCheckModeOpenSSH: OpenSSH through `tsconnect nc` prints the check URL while held and
// gets its shell once the check is completed.
func TestCheckModeOpenSSH(t *testing.T) {
	tn, alice, _ := newPolicyNet(t, checkModePolicy, "alice")
	ctx := context.Background()
	serverKey, _, err := tn.srv.CreateAuthKey(ctx, control.AuthKeyOptions{User: alice.ID, Tags: []string{"tag:server"}, CreatedBy: alice.ID})
	if err != nil {
		t.Fatal(err)
	}
	client := tn.startAgent("client") // alice's
	tn.startAgentKey("server", serverKey)
	o := newOpenSSH(t, tn, client, "client", "server")
	cmd := exec.Command("ssh", append(append([]string{}, o.opts...), "root@server", "id -un")...)
	cmd.Env = append(o.env, "PATH=/usr/bin:/bin")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout strings.Builder
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ids := make(chan string, 1)
	var errText strings.Builder
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			errText.WriteString(sc.Text() + "\n")
			if m := checkURLRe.FindStringSubmatch(sc.Text()); m != nil && m[1] == "alice@example.com" {
				ids <- m[3]
			}
		}
	}()
	select {
	case id := <-ids:
		if err := tn.srv.CompleteCheck(ctx, id, alice.ID, control.AuthOIDC); err != nil {
			t.Fatal(err)
		}
	case <-scanned:
		cmd.Wait()
		t.Fatalf("ssh ended without printing the check URL; stderr:\n%s", errText.String())
	case <-time.After(60 * time.Second):
		t.Fatal("ssh printed no check URL within 60 s")
	}
	<-scanned
	if err := cmd.Wait(); err != nil || stdout.String() != "root\n" {
		t.Fatalf("ssh after the check: %v, stdout %q, stderr:\n%s", err, stdout.String(), errText.String())
	}
	// The audit log holds the hold, its outcome and the login, in that order.
	var kinds []string
	eventually.True(t, "the check, its outcome and the accept in the audit log", func() bool {
		kinds = kinds[:0]
		tn.srv.AuditExport(ctx, 0, time.Time{}, func(e control.AuthEvent) error {
			if e.Method == control.MethodSSH && e.SSH != nil && e.SSH.DstName == "server" {
				kinds = append(kinds, string(e.Kind))
			}
			return nil
		})
		return len(kinds) >= 4
	})
	if want := []string{"ssh-check", "ssh-check-accept", "ssh-accept", "ssh-end"}; !slices.Equal(kinds, want) {
		t.Errorf("the server's SSH audit events %v, want %v", kinds, want)
	}
}

// TestUpInteractiveLogin: `tsconnect up` without --auth-key prints a login URL and waits;
// CompleteLogin registers the node to that user and the agent comes up.
func TestUpInteractiveLogin(t *testing.T) {
	tn := newTestNet(t)
	dir := t.TempDir()
	cmd := exec.Command(tsconnectBin, "--socket", filepath.Join(dir, "agent.sock"), "up", "--login-server", tn.url,
		"--hostname", "interactive", "--state", filepath.Join(dir, "state"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	loginRe := regexp.MustCompile(`^\s*(http://\S+/login/([0-9a-f]{32}))\s*$`)
	ids, up := make(chan string, 1), make(chan struct{})
	var out strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if m := loginRe.FindStringSubmatch(sc.Text()); m != nil {
				ids <- m[2]
			}
			if strings.Contains(sc.Text(), "up: node interactive") {
				close(up)
			}
		}
	}()
	select {
	case id := <-ids:
		if err := tn.srv.CompleteLogin(context.Background(), id, tn.owner.ID); err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("tsconnect up printed no login URL within 30 s")
	}
	select {
	case <-up:
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not come up after the login")
	}
	nodes, err := tn.srv.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range nodes {
		found = found || (n.Name == "interactive" && n.User == tn.owner.ID && len(n.Tags) == 0 && !n.Ephemeral)
	}
	if !found {
		t.Fatalf("no node \"interactive\" of %s among %+v", tn.owner.Email, nodes)
	}
}
