package control

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"tsconnect/controlws"
	"tsconnect/internal/eventually"
)

// checkPolicy: members may SSH to the tagged server as root after re-authenticating within
// an hour, and as daemon after re-authenticating on every login. (The policy refuses tagged
// sources in check rules; control still refuses a check asked for one, e.g. by an agent
// whose map is stale after a retag.)
const checkPolicy = `{
	"tagOwners": {"tag:server": ["alice@example.com"], "tag:ci": ["alice@example.com"]},
	"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
	"ssh": [
		{"action": "check", "src": ["autogroup:member"], "dst": ["tag:server"], "users": ["root"], "checkPeriod": "1h"},
		{"action": "check", "src": ["autogroup:member"], "dst": ["tag:server"], "users": ["daemon"], "checkPeriod": "always"},
	],
}`

// checkNet is a network under checkPolicy: alice, bob, their laptops, the tagged server
// (whose control client asks for checks) and a tagged CI node.
type checkNet struct {
	e                *env
	alice, bob       User
	server           *machine
	laptop, bobs, ci controlws.Node
}

func newCheckNet(t *testing.T) *checkNet {
	cn := &checkNet{}
	cn.e = newEnv(t, nil)
	e := cn.e
	cn.alice, cn.bob = e.user("alice@example.com"), e.user("bob@example.com")
	ctx := context.Background()
	if _, err := e.s.SetPolicy(ctx, []byte(checkPolicy), "test"); err != nil {
		t.Fatal(err)
	}
	cn.server, _ = e.mustRegister(e.authKey(AuthKeyOptions{User: cn.alice.ID, Tags: []string{"tag:server"}, CreatedBy: cn.alice.ID}), "server")
	_, cn.laptop = e.mustRegister(e.authKey(AuthKeyOptions{User: cn.alice.ID}), "laptop")
	_, cn.bobs = e.mustRegister(e.authKey(AuthKeyOptions{User: cn.bob.ID}), "bobs")
	_, cn.ci = e.mustRegister(e.authKey(AuthKeyOptions{User: cn.alice.ID, Tags: []string{"tag:ci"}, CreatedBy: cn.alice.ID}), "ci")
	return cn
}

// checkCall is one sshCheck in flight from the server's agent.
type checkCall struct {
	pending chan controlws.SSHCheckVerdict // buffered
	done    chan struct{}
	v       *controlws.SSHCheckVerdict
	err     error
	cancel  context.CancelFunc
}

func (cn *checkNet) ask(src controlws.Node, localUser string) *checkCall {
	return askFrom(cn.server, src, localUser)
}

// askFrom is ask through agent's connection.
func askFrom(agent *machine, src controlws.Node, localUser string) *checkCall {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	c := &checkCall{pending: make(chan controlws.SSHCheckVerdict, 4), done: make(chan struct{}), cancel: cancel}
	req := controlws.SSHCheckRequest{SrcNode: src.ID, SrcAddr: src.Addresses[0].Addr(), User: localUser, LocalUser: localUser}
	go func() {
		defer close(c.done)
		c.v, c.err = agent.c.SSHCheck(ctx, req, func(v controlws.SSHCheckVerdict) { c.pending <- v })
	}()
	return c
}

// waitPending returns the pending verdict, failing if a final one came instead.
func (c *checkCall) waitPending(t *testing.T) controlws.SSHCheckVerdict {
	t.Helper()
	select {
	case p := <-c.pending:
		return p
	case <-c.done:
		t.Fatalf("check ended without pending: verdict %+v, err %v", c.v, c.err)
	}
	return controlws.SSHCheckVerdict{}
}

func (c *checkCall) final(t *testing.T) *controlws.SSHCheckVerdict {
	t.Helper()
	<-c.done
	c.cancel()
	if c.err != nil {
		t.Fatalf("check failed: %v", c.err)
	}
	return c.v
}

// immediate asks and wants a final verdict without a pending one.
func (cn *checkNet) immediate(t *testing.T, src controlws.Node, localUser string) *controlws.SSHCheckVerdict {
	t.Helper()
	c := cn.ask(src, localUser)
	v := c.final(t)
	select {
	case p := <-c.pending:
		t.Fatalf("got a pending verdict %+v before %+v; want an immediate answer", p, v)
	default:
	}
	return v
}

func checkID(t *testing.T, cn *checkNet, p controlws.SSHCheckVerdict) string {
	t.Helper()
	prefix := cn.e.cfg.ServerURL + "/check/"
	id, ok := strings.CutPrefix(p.URL, prefix)
	if !ok || len(id) != 32 {
		t.Fatalf("check URL %q: want %s + 32 hex digits", p.URL, prefix)
	}
	return id
}

// TestCheckCompleteThenWithinPeriod: bob, never authenticated, is held with a URL; alice
// cannot complete his check; bob can, which lets the login in; his next login within the
// hour passes at once, and after the hour he is asked again.
func TestCheckCompleteThenWithinPeriod(t *testing.T) {
	cn := newCheckNet(t)
	ctx := context.Background()
	c := cn.ask(cn.bobs, "root")
	p := c.waitPending(t)
	id := checkID(t, cn, p)
	if p.User != "bob@example.com" || p.Expires.IsZero() {
		t.Errorf("pending verdict %+v: want user bob@example.com and an expiry", p)
	}
	info, err := cn.e.s.PendingCheck(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.User.ID != cn.bob.ID || info.SrcNode.Name != "bobs" || info.DstNode.Name != "server" || info.LocalUser != "root" {
		t.Errorf("PendingCheck = %+v", info)
	}
	if err := cn.e.s.CompleteCheck(ctx, id, cn.alice.ID, AuthPassword); !errors.Is(err, ErrForbidden) {
		t.Fatalf("alice completing bob's check: %v, want ErrForbidden", err)
	}
	select {
	case <-c.done:
		t.Fatalf("the check ended after alice's attempt: %+v %v", c.v, c.err)
	default:
	}
	if err := cn.e.s.CompleteCheck(ctx, id, cn.bob.ID, AuthPassword); err != nil {
		t.Fatal(err)
	}
	if v := c.final(t); v.Verdict != controlws.CheckAccept {
		t.Fatalf("after CompleteCheck: %+v, want accept", v)
	}
	if _, err := cn.e.s.PendingCheck(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("PendingCheck after completion: %v, want ErrNotFound", err)
	}
	if err := cn.e.s.CompleteCheck(ctx, id, cn.bob.ID, AuthPassword); !errors.Is(err, ErrNotFound) {
		t.Errorf("completing twice: %v, want ErrNotFound", err)
	}

	// Within the hour: at once, without another authentication.
	lastBefore, _, _ := cn.e.s.LastAuth(ctx, cn.bob.ID)
	if v := cn.immediate(t, cn.bobs, "root"); v.Verdict != controlws.CheckAccept {
		t.Fatalf("second login within the period: %+v, want accept", v)
	}
	// The pass is in the audit log, and it does not extend the period.
	if evs, err := cn.e.s.AuditLog(ctx, 0, 1); err != nil || len(evs) != 1 || evs[0].Kind != AuthCheckPass || !evs[0].OK || evs[0].User != "bob@example.com" {
		t.Errorf("audit log after a pass: %+v %v; want bob's check-pass first", evs, err)
	}
	if last, _, _ := cn.e.s.LastAuth(ctx, cn.bob.ID); !last.Equal(lastBefore) {
		t.Errorf("a pass moved bob's last authentication from %v to %v", lastBefore, last)
	}
	// Alice has not authenticated: she is held.
	ca := cn.ask(cn.laptop, "root")
	ca.waitPending(t)
	ca.cancel()
	<-ca.done

	// When his last authentication is 61 minutes old, bob is asked again.
	err = cn.e.s.st.Update(ctx, func(tx storeTx) error {
		return tx.SetLastAuth(cn.bob.ID, string(AuthPassword), time.Now().Add(-61*time.Minute).UTC())
	})
	if err != nil {
		t.Fatal(err)
	}
	c = cn.ask(cn.bobs, "root")
	c.waitPending(t)
	c.cancel()
	<-c.done

	// The audit log has bob's check and alice's refused attempt.
	events, err := cn.e.s.AuditLog(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var okBob, badAlice bool
	for _, ev := range events {
		okBob = okBob || (ev.Kind == AuthCheck && ev.UserID == cn.bob.ID && ev.OK)
		badAlice = badAlice || (ev.Kind == AuthCheck && ev.UserID == cn.alice.ID && !ev.OK)
	}
	if !okBob || !badAlice {
		t.Errorf("audit log %+v: want bob's check ok and alice's attempt refused", events)
	}
}

// TestCheckDecline: a declined check rejects the held login with a message saying so.
func TestCheckDecline(t *testing.T) {
	cn := newCheckNet(t)
	ctx := context.Background()
	c := cn.ask(cn.bobs, "root")
	id := checkID(t, cn, c.waitPending(t))
	if err := cn.e.s.DeclineCheck(ctx, id); err != nil {
		t.Fatal(err)
	}
	v := c.final(t)
	if v.Verdict != controlws.CheckReject || !strings.Contains(v.Message, "bob@example.com declined") {
		t.Fatalf("after DeclineCheck: %+v, want reject saying bob declined", v)
	}
	if err := cn.e.s.CompleteCheck(ctx, id, cn.bob.ID, AuthPassword); !errors.Is(err, ErrNotFound) {
		t.Errorf("completing a declined check: %v, want ErrNotFound", err)
	}
}

// TestCheckTimeout: nobody completes the check in time: reject, and the URL is dead.
func TestCheckTimeout(t *testing.T) {
	cn := newCheckNet(t)
	cn.e.s.flows.mu.Lock()
	cn.e.s.flows.checkTimeout = 300 * time.Millisecond
	cn.e.s.flows.mu.Unlock()
	c := cn.ask(cn.bobs, "root")
	id := checkID(t, cn, c.waitPending(t))
	v := c.final(t)
	if v.Verdict != controlws.CheckReject || !strings.Contains(v.Message, "did not re-authenticate within") {
		t.Fatalf("timed-out check: %+v, want reject saying it timed out", v)
	}
	if _, err := cn.e.s.PendingCheck(context.Background(), id); !errors.Is(err, ErrNotFound) {
		t.Errorf("PendingCheck after the timeout: %v, want ErrNotFound", err)
	}
}

// TestCheckAlways: under checkPeriod "always" an authentication made before the login was
// held does not count, and every login asks again.
func TestCheckAlways(t *testing.T) {
	cn := newCheckNet(t)
	ctx := context.Background()
	if err := cn.e.s.RecordAuth(ctx, cn.bob.ID, AuthPassword, AuthSignIn, true, "console"); err != nil {
		t.Fatal(err)
	}
	// The hourly rule lets that sign-in count…
	if v := cn.immediate(t, cn.bobs, "root"); v.Verdict != controlws.CheckAccept {
		t.Fatalf("root within the period after a sign-in: %+v, want accept", v)
	}
	// …"always" does not.
	for i := range 2 {
		c := cn.ask(cn.bobs, "daemon")
		id := checkID(t, cn, c.waitPending(t))
		if err := cn.e.s.CompleteCheck(ctx, id, cn.bob.ID, AuthPassword); err != nil {
			t.Fatal(err)
		}
		if v := c.final(t); v.Verdict != controlws.CheckAccept {
			t.Fatalf("login %d as daemon after completing: %+v", i, v)
		}
	}
}

// TestCheckRefusals: a tagged source, an address that is not the source's, a user the
// policy maps otherwise, and a cancel by the agent.
func TestCheckRefusals(t *testing.T) {
	cn := newCheckNet(t)
	v := cn.immediate(t, cn.ci, "root")
	if v.Verdict != controlws.CheckReject || !strings.Contains(v.Message, "tagged node") {
		t.Errorf("tagged source: %+v, want reject naming the tagged node", v)
	}
	// Bob's node claiming alice's laptop's address.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	v, err := cn.server.c.SSHCheck(ctx, controlws.SSHCheckRequest{SrcNode: cn.bobs.ID, SrcAddr: cn.laptop.Addresses[0].Addr(),
		User: "root", LocalUser: "root"}, nil)
	if err != nil || v.Verdict != controlws.CheckReject || !strings.Contains(v.Message, "is not an address of bobs") {
		t.Errorf("spoofed source address: %+v %v, want reject", v, err)
	}
	v, err = cn.server.c.SSHCheck(ctx, controlws.SSHCheckRequest{SrcNode: cn.bobs.ID, SrcAddr: cn.bobs.Addresses[0].Addr(),
		User: "bin", LocalUser: "bin"}, nil)
	if err != nil || v.Verdict != controlws.CheckReject || !strings.Contains(v.Message, `policy does not permit SSH as user "bin"`) {
		t.Errorf("user without a rule: %+v %v, want reject", v, err)
	}
	// The agent gives up: the pending check is gone.
	c := cn.ask(cn.bobs, "root")
	id := checkID(t, cn, c.waitPending(t))
	c.cancel()
	<-c.done
	eventually.True(t, "the canceled check to be forgotten", func() bool {
		_, err := cn.e.s.PendingCheck(context.Background(), id)
		return errors.Is(err, ErrNotFound)
	})
}

// TestCheckAgentDisconnects: the agent's connection ends during a hold: the check is dropped.
func TestCheckAgentDisconnects(t *testing.T) {
	cn := newCheckNet(t)
	c := cn.ask(cn.bobs, "root")
	id := checkID(t, cn, c.waitPending(t))
	cn.server.c.Close()
	<-c.done
	c.cancel()
	eventually.True(t, "the check of a gone agent to be dropped", func() bool {
		_, err := cn.e.s.PendingCheck(context.Background(), id)
		return errors.Is(err, ErrNotFound)
	})
}
