package agent

import (
	"context"
	"errors"
	"fmt"
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

// checkHoldLimit is how long a held login may wait for its verdict: control's check
// timeout (10 minutes) and a margin.
const checkHoldLimit = 11 * time.Minute

// DefaultCheckRetry is how long a held login waits for control to come back when the
// connection to it fails (Config.CheckRetry).
const DefaultCheckRetry = 30 * time.Second

// CheckBanner is the banner that tells the SSH client where its user must re-authenticate.
func CheckBanner(user, url string) string {
	return fmt.Sprintf("tsconnect: this login needs you to re-authenticate as %s. Visit: %s", user, url)
}

// holdCheck holds the login req (a check verdict v from peer) while control decides
// (checkhold.go); it returns the login once accepted, or why it was refused.
func (a *Agent) holdCheck(ctx context.Context, req sshd.AuthRequest, v rules.Verdict, peer controlws.Node, src, srcUser string) (*sshd.Login, error) {
	retry := a.cfg.CheckRetry
	if retry <= 0 {
		retry = DefaultCheckRetry
	}
	var control checkClient = a.node
	if a.checks != nil {
		control = a.checks
	}
	h := &checkHold{control: control, policy: a, clock: realClock{}, client: req, logf: a.logf,
		limit: checkHoldLimit, retry: retry, remote: req.Remote(), user: req.User(), v: v, peer: peer, src: src, srcUser: srcUser}
	rec := controlws.SSHAuditRecord{Decision: controlws.AuditCheck, Remote: req.Remote(), User: req.User(), LocalUser: v.LocalUser,
		Rule: v.Origin, Reason: "held until the user re-authenticates (check period " + v.CheckPeriod.String() + ")"}
	a.auditRecord(rec)
	l, err := h.run(ctx)
	rec.Time, rec.Decision, rec.Reason = time.Time{}, controlws.AuditCheckAccept, ""
	if err != nil {
		rec.Decision, rec.Reason = controlws.AuditCheckReject, err.Error()
	}
	a.auditRecord(rec)
	return l, err
}

// verdictFor evaluates a login from remote as req under the current map.
func (a *Agent) verdictFor(remote netip.AddrPort, req string) (rules.Verdict, controlws.Node, error) {
	nm := a.netMap()
	if nm == nil {
		return rules.Verdict{}, controlws.Node{}, errors.New("this node has no network map")
	}
	return verdict(nm, remote.Addr(), req, a.clock())
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
