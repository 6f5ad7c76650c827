package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"tsconnect/controlws"
	"tsconnect/node"
	"tsconnect/policy/rules"
	"tsconnect/sshd"
	"tsconnect/sshd/sshdtest"
)

// The held login: bob's node 7 at 100.64.0.7 asks for root, which a check rule with a
// one-hour period maps to root.
var (
	heldRemote  = netip.MustParseAddrPort("100.64.0.7:40022")
	heldVerdict = rules.Verdict{Action: rules.Check, LocalUser: "root", Rule: 0, Origin: "ssh[0]", CheckPeriod: time.Hour}
)

const (
	heldSrc  = "bob@example.com on bobs (100.64.0.7)"
	checkURL = "http://control.example/check/0123456789abcdef0123456789abcdef"
)

// holdTest is one checkHold running against fakes.
type holdTest struct {
	control *fakeControl
	policy  *fakePolicy
	clock   *fakeClock
	client  *fakeClient

	logs *sshdtest.Logs

	done  chan struct{}
	login *sshd.Login // the hold's answer, after done
	err   error
}

// startHold runs a hold of the login above under ctx in the background.
func startHold(t *testing.T, ctx context.Context) *holdTest {
	t.Helper()
	ht := &holdTest{control: newFakeControl(), policy: newFakePolicy(heldVerdict), clock: newFakeClock(),
		client: &fakeClient{}, done: make(chan struct{}), logs: sshdtest.NewLogs(t)}
	h := &checkHold{control: ht.control, policy: ht.policy, clock: ht.clock, client: ht.client,
		logf:  ht.logs.Logf,
		limit: checkHoldLimit, retry: DefaultCheckRetry,
		remote: heldRemote, user: "root", v: heldVerdict, peer: controlws.Node{ID: 7, Name: "bobs"}, src: heldSrc}
	go func() {
		defer close(ht.done)
		ht.login, ht.err = h.run(ctx)
	}()
	t.Cleanup(func() {
		select {
		case <-ht.done:
		case <-time.After(waitFor):
			t.Errorf("the hold still runs at the end of the test")
		}
	})
	return ht
}

// result waits for the hold's answer.
func (ht *holdTest) result(t *testing.T) (*sshd.Login, error) {
	t.Helper()
	select {
	case <-ht.done:
		return ht.login, ht.err
	case <-time.After(waitFor):
		t.Fatalf("the hold did not decide within %v", waitFor)
	}
	return nil, nil
}

// refused waits for the hold's answer and checks it is a refusal of root saying want.
func (ht *holdTest) refused(t *testing.T, want string) {
	t.Helper()
	l, err := ht.result(t)
	if err == nil {
		t.Fatalf("the hold let %+v in; want refused with %q", l, want)
	}
	prefix := `tsconnect: ` + heldSrc + `: login as "root" refused: `
	if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), want) {
		t.Fatalf("refusal %q; want %q followed by %q", err, prefix, want)
	}
}

// accepted waits for the hold's answer and checks it lets bob in as root under rule.
func (ht *holdTest) accepted(t *testing.T, rule string) *sshd.Login {
	t.Helper()
	l, err := ht.result(t)
	if err != nil {
		t.Fatalf("the hold refused: %v; want let in", err)
	}
	if l.LocalUser != "root" || l.Source != heldSrc || l.Rule != rule || !l.AllowLocalForward || !l.AllowRemoteForward || !l.AllowAgentForward {
		t.Fatalf("login %+v; want root from %q under %s with the accept defaults", l, heldSrc, rule)
	}
	return l
}

func (ht *holdTest) logged(substr string) bool { return ht.logs.Contains(substr) }

// TestCheckHoldAsksControl: the hold extends the handshake to its limit and asks control
// about exactly this login; an accept lets it in, a reject refuses it with control's message.
func TestCheckHoldAsksControl(t *testing.T) {
	t.Run("accept", func(t *testing.T) {
		ht := startHold(t, context.Background())
		c := ht.control.next(t)
		want := controlws.SSHCheckRequest{SrcNode: 7, SrcAddr: heldRemote.Addr(), User: "root", LocalUser: "root", CheckPeriod: time.Hour}
		if c.req != want {
			t.Errorf("check request %+v; want %+v", c.req, want)
		}
		c.verdict(controlws.CheckAccept, "bob re-authenticated 5m ago")
		ht.accepted(t, "ssh[0]")
		if !slices.Equal(ht.client.extended, []time.Duration{checkHoldLimit}) {
			t.Errorf("handshake extensions %v; want one of %v", ht.client.extended, checkHoldLimit)
		}
		if b := ht.client.shown(); len(b) != 0 {
			t.Errorf("banners %q for a check control answered at once; want none", b)
		}
	})
	t.Run("reject", func(t *testing.T) {
		ht := startHold(t, context.Background())
		ht.control.next(t).verdict(controlws.CheckReject, "bob@example.com declined the check")
		ht.refused(t, "bob@example.com declined the check")
	})
	t.Run("control error", func(t *testing.T) {
		ht := startHold(t, context.Background())
		ht.control.next(t).reply(nil, &controlws.Error{Code: controlws.CodeTooMany, Message: "too many pending checks"})
		ht.refused(t, "control: too many pending checks")
	})
	t.Run("unsupported", func(t *testing.T) {
		ht := startHold(t, context.Background())
		ht.control.next(t).reply(nil, controlws.ErrUnsupported)
		ht.refused(t, "the control server does not support check mode")
	})
}

// TestCheckHoldBannerOnce: control's pending URL is shown to the client as one banner
// naming the user and the URL, however often control repeats it; a new URL is shown again.
func TestCheckHoldBannerOnce(t *testing.T) {
	ht := startHold(t, context.Background())
	c := ht.control.next(t)
	pending := controlws.SSHCheckVerdict{Verdict: controlws.CheckPending, User: "bob@example.com", URL: checkURL}
	c.pending(controlws.SSHCheckVerdict{Verdict: controlws.CheckPending, User: "bob@example.com"}) // no URL: nothing to show
	for range 3 {
		c.pending(pending)
	}
	want := []string{CheckBanner("bob@example.com", checkURL)}
	if got := ht.client.shown(); !reflect.DeepEqual(got, want) {
		t.Fatalf("banners %q; want %q", got, want)
	}
	if want[0] != "tsconnect: this login needs you to re-authenticate as bob@example.com. Visit: "+checkURL {
		t.Errorf("banner %q does not name the user and the URL", want[0])
	}
	pending.URL += "2"
	c.pending(pending)
	want = append(want, CheckBanner("bob@example.com", pending.URL))
	if got := ht.client.shown(); !reflect.DeepEqual(got, want) {
		t.Fatalf("banners after a new URL %q; want %q", got, want)
	}
	c.verdict(controlws.CheckAccept, "")
	ht.accepted(t, "ssh[0]")
	if !ht.logged(`holding SSH login of ` + heldSrc + ` as "root" until bob@example.com re-authenticates`) {
		t.Errorf("no log line saying whom the login waits for in %q", ht.logs.Lines())
	}
}

// TestCheckHoldPolicyChange: a new map during a hold decides at once when it no longer asks
// for the same check (control's check is dropped then), and changes nothing when it does.
func TestCheckHoldPolicyChange(t *testing.T) {
	t.Run("rule gone", func(t *testing.T) {
		ht := startHold(t, context.Background())
		c := ht.control.next(t)
		ht.policy.set(rules.Verdict{Action: rules.Reject, Rule: -1, Reason: rules.ReasonUser("root")}, nil)
		c.cancelled(t)
		ht.refused(t, `the policy changed: policy does not permit SSH as user "root"`)
	})
	t.Run("now accept", func(t *testing.T) {
		ht := startHold(t, context.Background())
		c := ht.control.next(t)
		ht.policy.set(rules.Verdict{Action: rules.Accept, LocalUser: "root", Rule: 1, Origin: "ssh[1]", AcceptEnv: []string{"TSC_*"}}, nil)
		c.cancelled(t)
		l := ht.accepted(t, "ssh[1]")
		if !slices.Equal(l.AcceptEnv, []string{"TSC_*"}) {
			t.Errorf("AcceptEnv %q; want the accept rule's", l.AcceptEnv)
		}
		if !ht.logged("the policy now accepts the held login") {
			t.Errorf("no log line for the accept in %q", ht.logs.Lines())
		}
	})
	t.Run("accept as another user", func(t *testing.T) {
		ht := startHold(t, context.Background())
		c := ht.control.next(t)
		ht.policy.set(rules.Verdict{Action: rules.Accept, LocalUser: "bob", Origin: "ssh[1]", Reason: "mapped to bob"}, nil)
		c.cancelled(t)
		ht.refused(t, "the policy changed: mapped to bob")
	})
	t.Run("map gone", func(t *testing.T) {
		ht := startHold(t, context.Background())
		c := ht.control.next(t)
		ht.policy.set(rules.Verdict{}, errors.New("this node has no network map"))
		c.cancelled(t)
		ht.refused(t, "this node has no network map")
	})
	t.Run("same check", func(t *testing.T) {
		ht := startHold(t, context.Background())
		c := ht.control.next(t)
		ht.policy.set(heldVerdict, nil)
		ht.policy.waitAsked(t)
		if c.ctx.Err() != nil {
			t.Fatal("a map with the same check rule cancelled the check at control")
		}
		c.verdict(controlws.CheckAccept, "")
		ht.accepted(t, "ssh[0]")
	})
	t.Run("another period", func(t *testing.T) {
		ht := startHold(t, context.Background())
		c := ht.control.next(t)
		always := heldVerdict
		always.CheckPeriod, always.Origin = 0, "ssh[2]"
		ht.policy.set(always, nil)
		c.cancelled(t)
		c2 := ht.control.next(t)
		if c2.req.CheckPeriod != 0 || c2.req.LocalUser != "root" {
			t.Fatalf("second check request %+v; want the new period (0, always) for root", c2.req)
		}
		c2.verdict(controlws.CheckAccept, "")
		ht.accepted(t, "ssh[2]")
	})
}

// TestCheckHoldControlDown: control unreachable during a hold is retried with backoff for
// CheckRetry, then refused (fail closed); control back within it lets the same hold ask again.
func TestCheckHoldControlDown(t *testing.T) {
	unreachable := fmt.Errorf("%w: dial: connection refused", node.ErrControlUnreachable)
	t.Run("stays down", func(t *testing.T) {
		ht := startHold(t, context.Background())
		start := ht.clock.Now()
		var calls int
		var firstFail time.Time
	loop:
		for {
			select {
			case c := <-ht.control.calls:
				if calls == 0 {
					firstFail = ht.clock.Now()
				}
				calls++
				c.reply(nil, unreachable)
			case <-ht.clock.armed:
				ht.clock.advance(2 * time.Second) // the longest backoff: every sleep ends
			case <-ht.done:
				break loop
			case <-time.After(waitFor):
				t.Fatal("the hold neither asked again nor decided")
			}
		}
		ht.refused(t, "the control server is unreachable, so the re-authentication cannot be checked")
		if down := ht.clock.Now().Sub(firstFail); down < DefaultCheckRetry || down > DefaultCheckRetry+4*time.Second {
			t.Errorf("refused after control was down %v; want after CheckRetry %v", down, DefaultCheckRetry)
		}
		if calls < 10 || ht.clock.Now().Sub(start) > checkHoldLimit {
			t.Errorf("%d calls to control in %v; want retries with a backoff of at most 2 s", calls, ht.clock.Now().Sub(start))
		}
	})
	t.Run("comes back", func(t *testing.T) {
		ht := startHold(t, context.Background())
		for i := range 3 {
			ht.control.next(t).reply(nil, unreachable)
			<-ht.clock.armed // the limit, then each backoff
			if i == 0 {
				<-ht.clock.armed
			}
			ht.clock.advance(2 * time.Second)
		}
		c := ht.control.next(t)
		if c.req.HeldFor != 6*time.Second {
			t.Errorf("HeldFor %v after three 2 s waits; want 6s", c.req.HeldFor)
		}
		c.verdict(controlws.CheckAccept, "")
		ht.accepted(t, "ssh[0]")
	})
}

// TestCheckHoldClientHangUp: a client that hangs up ends the hold at once and cancels the
// check at control; the server closing ends it too, without calling it a hang-up.
func TestCheckHoldClientHangUp(t *testing.T) {
	t.Run("hang-up", func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		ht := startHold(t, ctx)
		c := ht.control.next(t)
		c.pending(controlws.SSHCheckVerdict{Verdict: controlws.CheckPending, User: "bob@example.com", URL: checkURL})
		cancel(fmt.Errorf("%w (EOF)", sshd.ErrClientGone))
		c.cancelled(t)
		ht.refused(t, "the client hung up")
		if !ht.logged("hung up during the check hold") {
			t.Errorf("no log line for the hang-up in %q", ht.logs.Lines())
		}
	})
	t.Run("server closing", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		ht := startHold(t, ctx)
		c := ht.control.next(t)
		cancel()
		c.cancelled(t)
		ht.refused(t, "nobody re-authenticated in time")
		if ht.logged("hung up") {
			t.Errorf("the server closing was logged as a hang-up: %q", ht.logs.Lines())
		}
	})
}

// TestCheckHoldLimit: at checkHoldLimit the check at control is cancelled and the login
// refused, even if an accept arrives after the limit.
func TestCheckHoldLimit(t *testing.T) {
	ht := startHold(t, context.Background())
	c := ht.control.next(t)
	<-ht.clock.armed // the limit is set
	ht.clock.advance(checkHoldLimit - time.Second)
	if c.ctx.Err() != nil {
		t.Fatal("the check was cancelled before the hold's limit")
	}
	ht.clock.advance(time.Second)
	select {
	case <-c.ctx.Done():
	case <-time.After(waitFor):
		t.Fatal("the check was not cancelled at the hold's limit")
	}
	c.verdict(controlws.CheckAccept, "too late")
	ht.refused(t, "nobody re-authenticated in time")
}
