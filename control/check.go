package control

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"tsconnect/controlws"
	"tsconnect/internal/safetext"
	"tsconnect/policy/rules"
)

// Check mode, control's side: an agent holding an SSH login under a check rule asks for the
// verdict (controlws.TypeSSHCheck). Control re-evaluates the policy for (source node, the
// agent's node, user); a user who authenticated within the rule's period passes at once,
// anyone else gets a pending check with a one-time URL their web flow completes.

// CheckTimeout is how long a pending check (and its URL) stays valid.
const CheckTimeout = 10 * time.Minute

// Limits on pending checks (each holds a timer and a goroutine for CheckTimeout). Past
// one, the sshCheck is refused with controlws.CodeTooMany and the login stays refused.
const (
	// MaxPendingChecksPerSource bounds the pending checks for logins from one source node.
	MaxPendingChecksPerSource = 8
	// MaxPendingChecksPerDest bounds those one agent (destination node) holds.
	MaxPendingChecksPerDest = 32
	// MaxPendingChecks bounds those of the whole server.
	MaxPendingChecks = 4096
	// MaxCheckUserLen bounds the user names of an sshCheck (requested and local).
	MaxCheckUserLen = 256
)

// maxHeldFor caps the hold time an agent reports (see controlws.SSHCheckRequest.HeldFor).
const maxHeldFor = CheckTimeout + 5*time.Minute

// CheckInfo describes a held SSH login waiting for its user.
type CheckInfo struct {
	ID        string         `json:"id"`
	User      User           `json:"user"` // who must re-authenticate: the source node's owner
	SrcNode   controlws.Node `json:"srcNode"`
	DstNode   controlws.Node `json:"dstNode"`
	LocalUser string         `json:"localUser"`
	Expires   time.Time      `json:"expires"`
}

// pendingCheck is a check waiting for its user; decide ends it once.
type pendingCheck struct {
	info  CheckInfo
	nc    *nodeConn // the agent's connection
	reqID uint64    // its sshCheck's ID
	timer *time.Timer

	once    sync.Once
	done    chan struct{} // closed by decide
	verdict controlws.SSHCheckVerdict
}

// flows holds the pending checks and interactive logins, in memory only (a restart of
// control ends them: agents ask again, nodes register again).
type flows struct {
	mu     sync.Mutex
	checks map[string]*pendingCheck
	logins map[string]*pendingLogin
	// checkTimeout and loginTimeout replace CheckTimeout and LoginTimeout when non-zero (tests).
	checkTimeout, loginTimeout time.Duration
	// maxLogins replaces MaxPendingLogins when non-zero (tests).
	maxLogins int
}

func (f *flows) timeouts() (check, login time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	check, login = CheckTimeout, LoginTimeout
	if f.checkTimeout > 0 {
		check = f.checkTimeout
	}
	if f.loginTimeout > 0 {
		login = f.loginTimeout
	}
	return check, login
}

// newFlowID returns a 128-bit random identifier in hex.
func newFlowID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sshCheck serves a TypeSSHCheck request: an immediate verdict, or a pending one now and the
// final verdict later from a goroutine of the control connection.
func (nc *nodeConn) sshCheck(env *controlws.Envelope, req *controlws.SSHCheckRequest) (string, any, error) {
	s := nc.s
	ctx := s.ctx
	dstID := nc.nodeID.Load()
	if dstID == 0 {
		return "", nil, errf(controlws.CodeNotRegistered, "sshCheck before the map stream on this connection")
	}
	if len(req.User) > MaxCheckUserLen || len(req.LocalUser) > MaxCheckUserLen {
		return "", nil, errf(controlws.CodeBadRequest, "sshCheck: user names of %d and %d bytes, over the limit of %d",
			len(req.User), len(req.LocalUser), MaxCheckUserLen)
	}
	reject := func(format string, args ...any) (string, any, error) {
		msg := fmt.Sprintf(format, args...)
		s.logf("control: ssh check to node %d from node %d as %s: reject: %s", dstID, req.SrcNode, safetext.Bounded(req.LocalUser, 0), safetext.Escape(msg))
		return controlws.TypeSSHCheckVerdict, &controlws.SSHCheckVerdict{Verdict: controlws.CheckReject, Message: msg}, nil
	}
	// The policy decides as it is now, not as the agent last saw it.
	s.mu.RLock()
	src, srcOK := s.nodes[req.SrcNode]
	dst, dstOK := s.nodes[dstID]
	var (
		v          rules.Verdict
		srcN, dstN controlws.Node
		owner      controlws.UserProfile
	)
	if srcOK && dstOK {
		srcN, dstN = s.nodeView(src), s.nodeView(dst)
		owner = s.users[srcN.User]
		if nr := s.compiledLocked().rules[dstID]; nr != nil {
			v = nr.SSHVerdict(req.SrcAddr, req.User, nil)
		} else {
			v = rules.Verdict{Action: rules.Reject, Reason: "this node has no policy"}
		}
	}
	s.mu.RUnlock()
	switch {
	case !dstOK:
		return "", nil, errf(controlws.CodeNotRegistered, "this machine has no live node")
	case !srcOK || src.loggedOut:
		return reject("the source node %d is not in the network", req.SrcNode)
	case !slices.ContainsFunc(srcN.Addresses, func(p netip.Prefix) bool { return p.Addr() == req.SrcAddr.Unmap() }):
		return reject("%s is not an address of %s", req.SrcAddr, srcN.Name)
	case len(srcN.Tags) > 0 || srcN.User == 0:
		return reject("%s is a tagged node: check mode needs a person to re-authenticate, so tagged nodes cannot log in under a check rule", srcN.Name)
	case v.Action == rules.Accept && v.LocalUser == req.LocalUser:
		return controlws.TypeSSHCheckVerdict, &controlws.SSHCheckVerdict{Verdict: controlws.CheckAccept, User: owner.LoginName,
			Message: "the policy now accepts this login without a check"}, nil
	case v.Action != rules.Check:
		return reject("%s", v.Reason)
	case v.LocalUser != req.LocalUser:
		return reject("the policy maps %q to local user %q, not %q", req.User, v.LocalUser, req.LocalUser)
	}
	user, err := s.UserByEmail(ctx, owner.LoginName)
	if err != nil {
		return reject("the owner of %s is not a user any more", srcN.Name)
	}
	now := s.now()
	last, method, err := s.LastAuth(ctx, user.ID)
	if err != nil {
		return "", nil, fmt.Errorf("last authentication of user %d: %w", user.ID, err)
	}
	heldSince := now.Add(-min(max(req.HeldFor, 0), maxHeldFor))
	if !last.IsZero() && ((v.CheckPeriod > 0 && now.Sub(last) < v.CheckPeriod) || !last.Before(heldSince)) {
		s.logf("control: ssh check %s on %s as %s: accept: %s authenticated by %s at %s, within %s",
			safetext.Bounded(user.Email, 0), dstN.Name, safetext.Bounded(req.LocalUser, 0), safetext.Bounded(user.Email, 0), method, last.UTC().Format(time.RFC3339), periodText(v.CheckPeriod))
		if err := s.RecordAuth(ctx, user.ID, method, AuthCheckPass, true, fmt.Sprintf("%s as %q from %s: authenticated at %s, within %s",
			dstN.Name, req.LocalUser, srcN.Name, last.UTC().Format(time.RFC3339), periodText(v.CheckPeriod))); err != nil {
			s.logf("control: recording a passed check: %v", err)
		}
		return controlws.TypeSSHCheckVerdict, &controlws.SSHCheckVerdict{Verdict: controlws.CheckAccept, User: user.Email,
			Message: fmt.Sprintf("authenticated at %s", last.UTC().Format(time.RFC3339))}, nil
	}
	timeout, _ := s.flows.timeouts()
	pc := &pendingCheck{
		info: CheckInfo{ID: newFlowID(), User: user, SrcNode: srcN, DstNode: dstN, LocalUser: req.LocalUser,
			Expires: now.Add(timeout).UTC()},
		nc: nc, reqID: env.ID, done: make(chan struct{}),
	}
	pc.timer = time.AfterFunc(timeout, func() {
		s.decideCheck(pc, controlws.CheckReject, fmt.Sprintf("%s did not re-authenticate within %v", user.Email, timeout))
	})
	if err := s.flows.addCheck(pc); err != nil {
		pc.timer.Stop()
		s.logf("control: ssh check to node %d from node %d: refused: %s", dstID, req.SrcNode, err.Message)
		return "", nil, err
	}
	url := s.cfg.ServerURL + "/check/" + pc.info.ID
	s.logf("control: ssh check %s from %s on %s as %s: pending (%s), check %s…", safetext.Bounded(user.Email, 0), srcN.Name, dstN.Name,
		safetext.Bounded(req.LocalUser, 0),
		periodText(v.CheckPeriod), pc.info.ID[:8])
	pending := &controlws.SSHCheckVerdict{Verdict: controlws.CheckPending, User: user.Email, URL: url, Expires: pc.info.Expires,
		Message: fmt.Sprintf("re-authentication required to log in as %q (%s)", req.LocalUser, periodText(v.CheckPeriod))}
	if err := nc.reply(env.ID, controlws.TypeSSHCheckVerdict, pending); err != nil {
		s.decideCheck(pc, controlws.CheckReject, "the agent disconnected")
		return "", nil, nil
	}
	nc.wg.Add(1)
	go func() {
		defer nc.wg.Done()
		select {
		case <-pc.done:
		case <-nc.done:
			s.decideCheck(pc, controlws.CheckReject, "the agent disconnected")
			return
		case <-s.ctx.Done():
			s.decideCheck(pc, controlws.CheckReject, "control is shutting down")
			return
		}
		nc.reply(pc.reqID, controlws.TypeSSHCheckVerdict, &pc.verdict)
	}()
	return "", nil, nil
}

// periodText describes a check period for logs and banners.
func periodText(d time.Duration) string {
	if d == 0 {
		return "on every login"
	}
	return "valid for " + d.String()
}

// cancelCheck serves TypeSSHCheckCancel: the agent gave up the check with that request ID.
func (nc *nodeConn) cancelCheck(reqID uint64) {
	nc.s.flows.mu.Lock()
	var pc *pendingCheck
	for _, c := range nc.s.flows.checks {
		if c.nc == nc && c.reqID == reqID {
			pc = c
			break
		}
	}
	nc.s.flows.mu.Unlock()
	if pc != nil {
		nc.s.decideCheck(pc, controlws.CheckReject, "the agent gave up the login")
	}
}

// decideCheck ends pc with verdict (first call wins) and forgets it.
func (s *Server) decideCheck(pc *pendingCheck, verdict, msg string) bool {
	first := false
	pc.once.Do(func() {
		first = true
		s.flows.mu.Lock()
		delete(s.flows.checks, pc.info.ID)
		s.flows.mu.Unlock()
		if pc.timer != nil {
			pc.timer.Stop()
		}
		pc.verdict = controlws.SSHCheckVerdict{Verdict: verdict, User: pc.info.User.Email, Message: msg}
		close(pc.done)
		s.logf("control: ssh check %s… for %s on %s as %s: %s: %s", pc.info.ID[:8], safetext.Bounded(pc.info.User.Email, 0),
			pc.info.DstNode.Name, safetext.Bounded(pc.info.LocalUser, 0), verdict, safetext.Bounded(msg, 512))
	})
	return first
}

func (s *Server) pendingCheck(id string) (*pendingCheck, error) {
	s.flows.mu.Lock()
	defer s.flows.mu.Unlock()
	pc, ok := s.flows.checks[id]
	if !ok || !s.now().Before(pc.info.Expires) {
		return nil, fmt.Errorf("control: check %q: %w (unknown, decided or expired)", shortID(id), ErrNotFound)
	}
	return pc, nil
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8] + "…"
	}
	return id
}

// PendingCheck returns the held login waiting under id, or an error wrapping ErrNotFound
// when there is none (unknown, already decided or expired).
func (s *Server) PendingCheck(ctx context.Context, id string) (CheckInfo, error) {
	pc, err := s.pendingCheck(id)
	if err != nil {
		return CheckInfo{}, err
	}
	return pc.info, nil
}

// CompleteCheck lets the held login under id in: userID (who just authenticated with method)
// must be the user the check waits for, else an error wrapping ErrForbidden (recorded as a
// failed check). The authentication is recorded (RecordAuth, kind "check"), so the user's
// next logins within the rule's check period pass at once.
func (s *Server) CompleteCheck(ctx context.Context, id string, userID int64, method AuthMethod) error {
	pc, err := s.pendingCheck(id)
	if err != nil {
		return err
	}
	detail := fmt.Sprintf("SSH as %q on %s from %s", pc.info.LocalUser, pc.info.DstNode.Name, pc.info.SrcNode.Name)
	if userID != pc.info.User.ID {
		if err := s.RecordAuth(ctx, userID, method, AuthCheck, false,
			fmt.Sprintf("tried to complete the check of %s: %s", pc.info.User.Email, detail)); err != nil {
			s.logf("control: recording a refused check: %v", err)
		}
		return fmt.Errorf("control: check %s waits for %s: %w", shortID(id), pc.info.User.Email, ErrForbidden)
	}
	if err := s.RecordAuth(ctx, userID, method, AuthCheck, true, detail); err != nil {
		return fmt.Errorf("control: recording the check: %w", err)
	}
	if !s.decideCheck(pc, controlws.CheckAccept, fmt.Sprintf("%s re-authenticated (%s)", pc.info.User.Email, method)) {
		return fmt.Errorf("control: check %q: %w (decided meanwhile)", shortID(id), ErrNotFound)
	}
	return nil
}

// DeclineCheck refuses the held login under id; the SSH client is told it was declined.
func (s *Server) DeclineCheck(ctx context.Context, id string) error {
	pc, err := s.pendingCheck(id)
	if err != nil {
		return err
	}
	if err := s.RecordAuth(ctx, pc.info.User.ID, "", AuthCheck, false,
		fmt.Sprintf("declined: SSH as %q on %s from %s", pc.info.LocalUser, pc.info.DstNode.Name, pc.info.SrcNode.Name)); err != nil {
		s.logf("control: recording a declined check: %v", err)
	}
	if !s.decideCheck(pc, controlws.CheckReject, fmt.Sprintf("%s declined the login", pc.info.User.Email)) {
		return fmt.Errorf("control: check %q: %w (decided meanwhile)", shortID(id), ErrNotFound)
	}
	return nil
}

// addCheck records pc unless a limit on pending checks is reached.
func (f *flows) addCheck(pc *pendingCheck) *controlws.Error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.checks) >= MaxPendingChecks {
		return errf(controlws.CodeTooMany, "control has %d SSH checks pending, its limit: try again in a few minutes", len(f.checks))
	}
	src, dst := 0, 0
	for _, c := range f.checks {
		if c.info.SrcNode.ID == pc.info.SrcNode.ID {
			src++
		}
		if c.info.DstNode.ID == pc.info.DstNode.ID {
			dst++
		}
	}
	switch {
	case src >= MaxPendingChecksPerSource:
		return errf(controlws.CodeTooMany, "%d SSH checks are pending for logins from %s, the limit: complete or cancel one first",
			src, pc.info.SrcNode.Name)
	case dst >= MaxPendingChecksPerDest:
		return errf(controlws.CodeTooMany, "%d SSH checks are pending on %s, the limit: complete or cancel one first",
			dst, pc.info.DstNode.Name)
	}
	if f.checks == nil {
		f.checks = map[string]*pendingCheck{}
	}
	f.checks[pc.info.ID] = pc
	return nil
}
