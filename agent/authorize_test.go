package agent

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"tsconnect/controlws"
	"tsconnect/policy/rules"
	"tsconnect/sshd"
)

// checkPolicy is sshPolicy with a check rule of period (e.g. "1h") for root instead.
func checkPolicy(period string) string {
	return `{
		"tagOwners": {"tag:server": ["alice@example.com"]},
		"acls": [{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:server:22"]}],
		"ssh": [{"action": "check", "src": ["alice@example.com"], "dst": ["tag:server"], "users": ["root"], "checkPeriod": "` + period + `"}],
	}`
}

// fakeAgent is an Agent deciding logins under a map the test sets, its check calls going
// to a fakeControl: no node, no SSH server.
type fakeAgent struct {
	*Agent
	control *fakeControl
	mu      sync.Mutex
	nm      *controlws.NetworkMap
}

func newFakeAgent(t *testing.T, nm *controlws.NetworkMap) *fakeAgent {
	f := &fakeAgent{control: newFakeControl(), nm: nm}
	f.Agent = &Agent{
		logf:      t.Logf,
		mapSource: func() *controlws.NetworkMap { f.mu.Lock(); defer f.mu.Unlock(); return f.nm },
		mapAsOf:   func() (time.Time, bool) { return time.Now(), true },
		checks:    f.control,
	}
	return f
}

// setMap installs nm as a new map arriving.
func (f *fakeAgent) setMap(nm *controlws.NetworkMap) {
	f.mu.Lock()
	f.nm = nm
	f.mu.Unlock()
	f.onNetMap(nm)
}

func fromLaptop(user string) *fakeRequest {
	return &fakeRequest{remote: netip.AddrPortFrom(laptopAddr.Addr(), 50022), user: user}
}

const laptopSrc = "alice@example.com on laptop (127.0.0.1)"

// TestAuthorizeAccept: an accept rule lets its user in as the local account it names,
// with the accept defaults (forwarding on), naming the source and the rule.
func TestAuthorizeAccept(t *testing.T) {
	f := newFakeAgent(t, netMapFor(t, sshPolicy("root")))
	l, err := f.authorize(context.Background(), fromLaptop("root"))
	if err != nil {
		t.Fatal(err)
	}
	if l.LocalUser != "root" || l.Source != laptopSrc || l.Rule != "ssh[0] (policy.hujson:4:11)" ||
		!l.AllowLocalForward || !l.AllowRemoteForward || !l.AllowAgentForward {
		t.Errorf("login %+v; want root from %q under ssh[0] at its line with forwarding", l, laptopSrc)
	}
}

// TestAuthorizeRefusals: every refusal says why in a sentence for the client's banner.
func TestAuthorizeRefusals(t *testing.T) {
	ctx := context.Background()
	f := newFakeAgent(t, netMapFor(t, sshPolicy("root")))
	for _, tc := range []struct {
		name string
		req  *fakeRequest
		want string
	}{
		{"not a peer", &fakeRequest{remote: netip.MustParseAddrPort("127.0.0.9:50022"), user: "root"},
			"tsconnect: 127.0.0.9 is not a node of this network (or may not reach this node)"},
		{"user not allowed", fromLaptop("daemon"), "tsconnect: " + laptopSrc + ": " + rules.ReasonUser("daemon")},
		{"invalid name", fromLaptop("a b"), "tsconnect: invalid SSH user name"},
	} {
		if l, err := f.authorize(ctx, tc.req); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: login %+v, error %v; want refused with %q", tc.name, l, err, tc.want)
		}
	}

	f.setMap(nil)
	if _, err := f.authorize(ctx, fromLaptop("root")); err == nil || !strings.Contains(err.Error(), "no network map yet") {
		t.Errorf("no map: %v; want refused saying so", err)
	}

	f = newFakeAgent(t, netMapFor(t, sshPolicy("root")))
	f.cfg.MaxMapAge = time.Minute
	f.mapAsOf = func() (time.Time, bool) { return time.Now().Add(-2 * time.Minute), true }
	if _, err := f.authorize(ctx, fromLaptop("root")); err == nil || !strings.Contains(err.Error(), "--max-map-age 1m0s") {
		t.Errorf("map older than MaxMapAge: %v; want refused naming --max-map-age", err)
	}
}

// TestAuthorizeEnforceRecorder: a login whose rule enforces recording but names no
// recorder node that exists is refused, saying why (fail closed); without enforcement the
// login goes in, unrecorded. (record_test.go records with real recorders.)
func TestAuthorizeEnforceRecorder(t *testing.T) {
	pol := func(enforce string) string {
		return `{
		"tagOwners": {"tag:server": ["alice@example.com"], "tag:rec": []},
		"acls": [{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:server:22"]}],
		"ssh": [{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:server"], "users": ["root"],
			"recorder": ["tag:rec"], "enforceRecorder": ` + enforce + `}],
	}`
	}
	f := newFakeAgent(t, netMapFor(t, pol("true")))
	want := "tsconnect: " + laptopSrc + ": this login must be recorded (enforceRecorder), and its rule names no recorder node of this network"
	if l, err := f.authorize(context.Background(), fromLaptop("root")); err == nil || err.Error() != want {
		t.Errorf("enforced: login %+v, error %v; want %q", l, err, want)
	}
	f = newFakeAgent(t, netMapFor(t, pol("false")))
	if l, err := f.authorize(context.Background(), fromLaptop("root")); err != nil || l.Record != nil {
		t.Errorf("recorder not enforced: %+v, %v; want logged in, unrecorded", l, err)
	}
}

// TestAuthorizeTaggedSource: a tagged source is described as tagged, not as its owner.
func TestAuthorizeTaggedSource(t *testing.T) {
	nm := netMapFor(t, sshPolicy("root"))
	nm.Peers[0].Tags = []string{"tag:ci"}
	f := newFakeAgent(t, nm)
	_, err := f.authorize(context.Background(), fromLaptop("daemon"))
	if want := "tsconnect: tagged on laptop (127.0.0.1): "; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("refusal %v; want it to start %q", err, want)
	}
}

// TestAuthorizeCheck: a check rule holds the login and asks control about exactly it; the
// client sees control's URL as a banner and gets in once control accepts.
func TestAuthorizeCheck(t *testing.T) {
	f := newFakeAgent(t, netMapFor(t, checkPolicy("1h")))
	req := fromLaptop("root")
	type result struct {
		l   *sshd.Login
		err error
	}
	done := make(chan result, 1)
	go func() { l, err := f.authorize(context.Background(), req); done <- result{l, err} }()
	c := f.control.next(t)
	want := controlws.SSHCheckRequest{SrcNode: 1, SrcAddr: laptopAddr.Addr(), User: "root", LocalUser: "root", CheckPeriod: time.Hour}
	if c.req.SrcNode != want.SrcNode || c.req.SrcAddr != want.SrcAddr || c.req.User != want.User ||
		c.req.LocalUser != want.LocalUser || c.req.CheckPeriod != want.CheckPeriod {
		t.Errorf("check request %+v; want %+v", c.req, want)
	}
	c.pending(controlws.SSHCheckVerdict{Verdict: controlws.CheckPending, User: "alice@example.com", URL: checkURL})
	c.verdict(controlws.CheckAccept, "")
	r := <-done
	if r.err != nil || r.l.LocalUser != "root" || r.l.Source != laptopSrc {
		t.Fatalf("held login: %+v, %v; want root from %q", r.l, r.err, laptopSrc)
	}
	if b := req.shown(); len(b) != 1 || b[0] != CheckBanner("alice@example.com", checkURL) {
		t.Errorf("banners %q; want the one check banner", b)
	}
	if fmt.Sprint(req.extended) != fmt.Sprint([]time.Duration{checkHoldLimit}) {
		t.Errorf("handshake extensions %v; want %v", req.extended, checkHoldLimit)
	}
}

// TestAuthorizeCheckNewMap: a new network map reaches the agent's held logins: one that
// makes the rule accept lets the held login in and drops the check at control.
func TestAuthorizeCheckNewMap(t *testing.T) {
	f := newFakeAgent(t, netMapFor(t, checkPolicy("1h")))
	done := make(chan error, 1)
	go func() { _, err := f.authorize(context.Background(), fromLaptop("root")); done <- err }()
	c := f.control.next(t)
	f.setMap(netMapFor(t, sshPolicy("root")))
	c.cancelled(t)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("held login after the rule became accept: %v; want let in", err)
		}
	case <-time.After(waitFor):
		t.Fatal("the held login did not react to the new map")
	}
}
