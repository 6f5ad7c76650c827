package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"tsconnect/controlws"
	"tsconnect/internal/backoff"
	"tsconnect/policy/rules"
	"tsconnect/sshd"
)

// A checkHold is one login held by a check rule: it asks control for the verdict, shows
// the URL control sends as a banner, and re-decides when the policy changes meanwhile. Its
// inputs are the small interfaces below, so its cases run against fakes (checkhold_test.go).

// checkClient asks control for a check verdict (node.Node.SSHCheck): onPending gets the URL
// the user must visit, then the final verdict comes back. An error wrapping
// node.ErrControlUnreachable means no working connection to control.
type checkClient interface {
	SSHCheck(ctx context.Context, req controlws.SSHCheckRequest, onPending func(controlws.SSHCheckVerdict)) (*controlws.SSHCheckVerdict, error)
}

// policySource is where a hold learns of policy changes: the agent's network map.
type policySource interface {
	// mapChanged returns a channel closed when the next network map arrives.
	mapChanged() <-chan struct{}
	// verdictFor evaluates the login from remote as user under the current map.
	verdictFor(remote netip.AddrPort, user string) (rules.Verdict, controlws.Node, error)
}

// clock is the time a hold runs on.
type clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed, unless stop is called first.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// heldClient is the SSH client waiting for the verdict (sshd.AuthRequest).
type heldClient interface {
	Banner(message string) error
	Extend(d time.Duration) error
}

// realClock is the system clock.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// errHoldLimit is the cause of a hold's context once checkHoldLimit has passed.
var errHoldLimit = errors.New("agent: the check hold ran out of time")

// checkHold is one held login and what it decides with.
type checkHold struct {
	control checkClient
	policy  policySource
	clock   clock
	client  heldClient
	logf    func(format string, args ...any)
	// limit is how long the hold may last (checkHoldLimit); retry how long it waits for an
	// unreachable control before refusing (Config.CheckRetry).
	limit, retry time.Duration

	remote netip.AddrPort
	user   string        // the requested user
	v      rules.Verdict // the check verdict holding the login; a policy change may replace it
	peer   controlws.Node
	src    string // describePeer, for messages and logs
	// srcUser is who the peer belongs to (peerOwner), for the recording's header.
	srcUser string

	start time.Time
	shown string // the URL last shown to the client
}

// run holds the login until control decides, the policy decides instead, control stays
// unreachable for h.retry, the client hangs up or h.limit passes; it returns the login once
// accepted, or why it was refused.
func (h *checkHold) run(ctx context.Context) (*sshd.Login, error) {
	if err := h.client.Extend(h.limit); err != nil {
		h.logf("agent: check hold for %s: %v", h.src, err)
	}
	h.start = h.clock.Now()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := h.clock.AfterFunc(h.limit, func() { cancel(errHoldLimit) })
	defer stop()

	var (
		unreachSince time.Time // when control first failed, zero while it answers
		retry        = backoff.Backoff{Min: 200 * time.Millisecond, Max: 2 * time.Second}
	)
	for {
		ans := h.ask(ctx)
		cv, err := ans.cv, ans.err
		switch {
		case ans.decided != nil:
			return ans.decided.login, ans.decided.err
		case errors.Is(err, errRetryNow):
			continue
		case ctx.Err() != nil:
			// Whatever came back, the hold is over: fail closed.
			return h.ended(ctx, "nobody re-authenticated in time")
		case err == nil && cv.Verdict == controlws.CheckAccept:
			h.logf("agent: control accepts the held login of %s as %q: %s", h.src, h.v.LocalUser, cv.Message)
			return h.accept()
		case err == nil:
			return h.refuse("%s", cv.Message)
		case errors.Is(err, controlws.ErrUnsupported):
			return h.refuse("the control server does not support check mode")
		}
		var ce *controlws.Error
		if errors.As(err, &ce) {
			return h.refuse("control: %s", ce.Message)
		}
		// Control unreachable: try again for a while, then fail closed.
		now := h.clock.Now()
		if unreachSince.IsZero() {
			unreachSince = now
		}
		if now.Sub(unreachSince) >= h.retry {
			h.logf("agent: check for %s: control unreachable for %v: %v", h.src, h.retry, err)
			return h.refuse("the control server is unreachable, so the re-authentication cannot be checked")
		}
		if !h.sleep(ctx, retry.Next()) {
			return h.ended(ctx, "the control server is unreachable, so the re-authentication cannot be checked")
		}
	}
}

// errRetryNow makes the hold ask control again at once.
var errRetryNow = errors.New("ask again")

// answer is how one question to control ended: its verdict or error (errRetryNow when the
// policy asks for another check meanwhile), or decided, when the policy decided the hold.
type answer struct {
	cv      *controlws.SSHCheckVerdict
	err     error
	decided *outcome
}

// outcome is a hold decided by a policy change: the login, or why it was refused.
type outcome struct {
	login *sshd.Login
	err   error
}

// ask puts one question to control and waits for its answer, re-deciding on every policy
// change meanwhile.
func (h *checkHold) ask(ctx context.Context) answer {
	changed := h.policy.mapChanged()
	req := controlws.SSHCheckRequest{SrcNode: h.peer.ID, SrcAddr: h.remote.Addr(), User: h.user, LocalUser: h.v.LocalUser,
		CheckPeriod: h.v.CheckPeriod, HeldFor: h.clock.Now().Sub(h.start)}
	type result struct {
		v   *controlws.SSHCheckVerdict
		err error
	}
	res := make(chan result, 1)
	cctx, ccancel := context.WithCancel(ctx)
	defer ccancel()
	go func() {
		v, err := h.control.SSHCheck(cctx, req, h.onPending)
		res <- result{v, err}
	}()
	for {
		select {
		case r := <-res:
			return answer{cv: r.v, err: r.err}
		case <-changed:
		}
		// A policy change decides here when it no longer asks for this same check.
		changed = h.policy.mapChanged()
		nv, _, err := h.policy.verdictFor(h.remote, h.user)
		if err == nil && nv.Action == rules.Check && nv.LocalUser == h.v.LocalUser && nv.CheckPeriod == h.v.CheckPeriod {
			continue
		}
		ccancel() // control drops the check
		<-res
		var o outcome
		switch {
		case err != nil:
			_, o.err = h.refuse("%v", err)
		case nv.Action == rules.Accept && nv.LocalUser == h.v.LocalUser:
			h.v = nv
			h.logf("agent: the policy now accepts the held login of %s as %q", h.src, h.v.LocalUser)
			o.login, o.err = h.accept()
		case nv.Action == rules.Check && nv.LocalUser == h.v.LocalUser:
			h.v = nv // another period: ask again
			return answer{err: errRetryNow}
		default:
			_, o.err = h.refuse("the policy changed: %s", nv.Reason)
		}
		return answer{decided: &o}
	}
}

// onPending shows control's URL to the client, once per URL.
func (h *checkHold) onPending(p controlws.SSHCheckVerdict) {
	if p.URL == "" || p.URL == h.shown {
		return
	}
	h.shown = p.URL
	h.logf("agent: holding SSH login of %s as %q until %s re-authenticates", h.src, h.v.LocalUser, p.User)
	if err := h.client.Banner(CheckBanner(p.User, p.URL)); err != nil {
		h.logf("agent: check banner for %s: %v", h.src, err)
	}
}

// sleep waits d on h's clock; false means ctx ended first.
func (h *checkHold) sleep(ctx context.Context, d time.Duration) bool {
	woke := make(chan struct{})
	stop := h.clock.AfterFunc(d, func() { close(woke) })
	defer stop()
	select {
	case <-woke:
		return true
	case <-ctx.Done():
		return false
	}
}

// accept is the login h.v grants, unless it must be recorded and names no recorder.
func (h *checkHold) accept() (*sshd.Login, error) {
	if err := noRecorder(h.v); err != nil {
		return h.refuse("%v", err)
	}
	return acceptLogin(h.v, h.src, h.srcUser, h.peer.Name), nil
}

func (h *checkHold) refuse(format string, args ...any) (*sshd.Login, error) {
	return nil, fmt.Errorf("tsconnect: %s: login as %q refused: %s", h.src, h.v.LocalUser, fmt.Sprintf(format, args...))
}

// ended answers once ctx is done: the client hung up (control was told to drop the check
// when SSHCheck returned), the server is closing, or the hold ran out of time.
func (h *checkHold) ended(ctx context.Context, why string) (*sshd.Login, error) {
	if cause := context.Cause(ctx); errors.Is(cause, sshd.ErrClientGone) {
		h.logf("agent: the SSH client of %s hung up during the check hold for %q after %v; check given up",
			h.src, h.v.LocalUser, h.clock.Now().Sub(h.start).Round(time.Millisecond))
		return h.refuse("the client hung up")
	}
	return h.refuse("%s", why)
}
