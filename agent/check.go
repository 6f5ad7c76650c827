package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"tsconnect/controlws"
	"tsconnect/policy/rules"
	"tsconnect/sshd"
)

// Check mode, the agent's side: a login a check rule matches is held (the SSH handshake
// waits in the "none" method) while control decides. Control answers at once when the
// user authenticated within the rule's period; otherwise it sends a URL, which the client
// sees as an auth banner, and the final verdict once the user completed (or declined) the
// web flow or the check timed out.

// checkHold is how long a held login may wait for its verdict: control's check timeout
// (10 minutes) and a margin.
const checkHold = 11 * time.Minute

// DefaultCheckRetry is how long a held login waits for control to come back when the
// connection to it fails (Config.CheckRetry).
const DefaultCheckRetry = 30 * time.Second

// CheckBanner is the banner that tells the SSH client where its user must re-authenticate.
func CheckBanner(user, url string) string {
	return fmt.Sprintf("tsconnect: this login needs you to re-authenticate as %s. Visit: %s", user, url)
}

// holdCheck holds a login v (a check verdict) from peer and asks control for the verdict;
// it returns the login once control accepts, or why it was refused.
func (a *Agent) holdCheck(ctx context.Context, remote netip.AddrPort, req string, v rules.Verdict, peer controlws.Node, src string) (*sshd.Login, error) {
	if err := sshd.ExtendHandshake(ctx, checkHold); err != nil {
		a.logf("agent: check hold for %s: %v", src, err)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, checkHold)
	defer cancel()
	refuse := func(format string, args ...any) (*sshd.Login, error) {
		return nil, fmt.Errorf("tsconnect: %s: login as %q refused: %s", src, v.LocalUser, fmt.Sprintf(format, args...))
	}
	// ended answers once ctx is done: the client hung up (control was told to drop the check
	// when SSHCheck returned), the server is closing, or the hold ran out of time.
	ended := func(why string) (*sshd.Login, error) {
		if cause := context.Cause(ctx); errors.Is(cause, sshd.ErrClientGone) {
			a.logf("agent: the SSH client of %s hung up during the check hold for %q after %v; check given up",
				src, v.LocalUser, time.Since(start).Round(time.Millisecond))
			return refuse("the client hung up")
		}
		return refuse("%s", why)
	}
	accept := func() (*sshd.Login, error) {
		l := &sshd.Login{LocalUser: v.LocalUser, Source: src, Rule: v.Origin, AcceptEnv: v.AcceptEnv}
		l.GrantAcceptDefaults()
		return l, nil
	}
	retry := a.cfg.CheckRetry
	if retry <= 0 {
		retry = DefaultCheckRetry
	}
	var (
		shown        string    // the URL last shown to the client
		unreachSince time.Time // when control first failed, zero while it answers
		backoff      = 200 * time.Millisecond
	)
	onPending := func(p controlws.SSHCheckVerdict) {
		if p.URL == "" || p.URL == shown {
			return
		}
		shown = p.URL
		a.logf("agent: holding SSH login of %s as %q until %s re-authenticates", src, v.LocalUser, p.User)
		if err := sshd.SendBanner(ctx, CheckBanner(p.User, p.URL)); err != nil {
			a.logf("agent: check banner for %s: %v", src, err)
		}
	}
	for {
		changed := a.mapChanged()
		creq := controlws.SSHCheckRequest{SrcNode: peer.ID, SrcAddr: remote.Addr(), User: req, LocalUser: v.LocalUser,
			CheckPeriod: v.CheckPeriod, HeldFor: time.Since(start)}
		type result struct {
			v   *controlws.SSHCheckVerdict
			err error
		}
		res := make(chan result, 1)
		cctx, ccancel := context.WithCancel(ctx)
		go func() {
			cv, err := a.node.SSHCheck(cctx, creq, onPending)
			res <- result{cv, err}
		}()
		var r result
	wait:
		for {
			select {
			case r = <-res:
				break wait
			case <-changed:
				// A policy change decides here when it no longer asks for this same check.
				changed = a.mapChanged()
				nv, _, err := a.verdictFor(remote, req)
				if err == nil && nv.Action == rules.Check && nv.LocalUser == v.LocalUser && nv.CheckPeriod == v.CheckPeriod {
					continue
				}
				ccancel()
				<-res
				switch {
				case err != nil:
					return refuse("%v", err)
				case nv.Action == rules.Accept && nv.LocalUser == v.LocalUser:
					v = nv
					a.logf("agent: the policy now accepts the held login of %s as %q", src, v.LocalUser)
					return accept()
				case nv.Action == rules.Check && nv.LocalUser == v.LocalUser:
					v = nv // another period: ask again
					r = result{err: errRetryNow}
					break wait
				}
				return refuse("the policy changed: %s", nv.Reason)
			}
		}
		ccancel()
		switch {
		case r.err == nil && r.v.Verdict == controlws.CheckAccept:
			a.logf("agent: control accepts the held login of %s as %q: %s", src, v.LocalUser, r.v.Message)
			return accept()
		case r.err == nil:
			return refuse("%s", r.v.Message)
		case errors.Is(r.err, errRetryNow):
			continue
		case ctx.Err() != nil:
			return ended("nobody re-authenticated in time")
		case errors.Is(r.err, controlws.ErrUnsupported):
			return refuse("the control server does not support check mode")
		}
		var ce *controlws.Error
		if errors.As(r.err, &ce) {
			return refuse("control: %s", ce.Message)
		}
		// Control unreachable: try again for a while, then fail closed.
		if unreachSince.IsZero() {
			unreachSince = time.Now()
		}
		if time.Since(unreachSince) >= retry {
			a.logf("agent: check for %s: control unreachable for %v: %v", src, retry, r.err)
			return refuse("the control server is unreachable, so the re-authentication cannot be checked")
		}
		sleep := backoff/2 + rand.N(backoff/2+1)
		backoff = min(backoff*2, 2*time.Second)
		select {
		case <-time.After(sleep):
		case <-ctx.Done():
			return ended("the control server is unreachable, so the re-authentication cannot be checked")
		}
	}
}

// errRetryNow makes the hold ask control again at once.
var errRetryNow = errors.New("ask again")

// verdictFor evaluates a login from remote as req under the current map.
func (a *Agent) verdictFor(remote netip.AddrPort, req string) (rules.Verdict, controlws.Node, error) {
	nm := a.netMap()
	if nm == nil {
		return rules.Verdict{}, controlws.Node{}, errors.New("this node has no network map")
	}
	return verdict(nm, remote.Addr(), req)
}

// mapChanged returns a channel closed when the next network map arrives.
func (a *Agent) mapChanged() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mapCh == nil {
		a.mapCh = make(chan struct{})
	}
	return a.mapCh
}

// notifyMap wakes the holds waiting in mapChanged.
func (a *Agent) notifyMap() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mapCh != nil {
		close(a.mapCh)
		a.mapCh = nil
	}
}
