package control

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"tsconnect/control/store"
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

// Limits on pending checks, counted in the store (each row lives up to CheckTimeout; an
// agent's request waiting on one holds a timer and a goroutine). Past one, the sshCheck is
// refused with controlws.CodeTooMany and the login stays refused.
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

// checkWaiter is an agent's sshCheck waiting on a stored check (store.Check, the truth);
// it lives in memory only, to answer that request, and is woken once.
type checkWaiter struct {
	hash  string    // the store's key: SHA-256 of the check's ID
	info  CheckInfo // without ID when re-attached (only the hash is stored)
	nc    *nodeConn // the agent's connection
	reqID uint64    // its sshCheck's ID
	timer *time.Timer

	done    chan struct{} // closed once decided
	verdict controlws.SSHCheckVerdict
}

// flows holds the requests waiting on pending checks and interactive logins. The checks
// and logins themselves live in the store, so a restart of control loses neither: an agent
// re-asks with the same check, and a login's URL still registers its machine.
type flows struct {
	// mu serializes the flows' store changes with their waiters, so a decision never misses
	// a waiter that attaches meanwhile.
	mu     sync.Mutex
	checks map[string]*checkWaiter // by hash
	logins map[string]*loginWaiter // by hash
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

// flowHash is the store's key for a check or login ID (the store never sees the ID).
func flowHash(id string) string {
	h := sha256.Sum256([]byte(id))
	return string(h[:])
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
		if nr := s.compiledLocked().rulesOf(dstID); nr != nil {
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
	w, final, err := s.holdCheck(nc, env.ID, req, CheckInfo{User: user, SrcNode: srcN, DstNode: dstN, LocalUser: req.LocalUser,
		Expires: now.Add(timeout).UTC()}, heldSince)
	switch {
	case err != nil:
		s.logf("control: ssh check to node %d from node %d: refused: %s", dstID, req.SrcNode, safetext.Escape(err.Error()))
		return "", nil, err
	case final != nil:
		return controlws.TypeSSHCheckVerdict, final, nil
	}
	pending := &controlws.SSHCheckVerdict{Verdict: controlws.CheckPending, User: user.Email, Expires: w.info.Expires,
		Message: fmt.Sprintf("re-authentication required to log in as %q (%s)", req.LocalUser, periodText(v.CheckPeriod))}
	if w.info.ID != "" {
		pending.URL = s.cfg.ServerURL + "/check/" + w.info.ID
		s.logf("control: ssh check %s from %s on %s as %s: pending (%s), check %s…", safetext.Bounded(user.Email, 0), srcN.Name, dstN.Name,
			safetext.Bounded(req.LocalUser, 0), periodText(v.CheckPeriod), w.info.ID[:8])
	} else { // the agent asks again (after control restarted): its banner shows the URL already
		s.logf("control: ssh check %s from %s on %s as %s: the agent asks again, still pending", safetext.Bounded(user.Email, 0), srcN.Name, dstN.Name,
			safetext.Bounded(req.LocalUser, 0))
	}
	if err := nc.reply(env.ID, controlws.TypeSSHCheckVerdict, pending); err != nil {
		s.detachCheck(w)
		return "", nil, nil
	}
	nc.wg.Add(1)
	go func() {
		defer nc.wg.Done()
		select {
		case <-w.done:
		case <-nc.done:
			if s.ctx.Err() != nil { // shutting down: the check stays for the agent's next ask
				s.detachCheck(w)
			} else {
				s.dropCheck(w, "the agent disconnected")
			}
			return
		case <-s.ctx.Done():
			s.detachCheck(w)
			return
		}
		if err := nc.reply(w.reqID, controlws.TypeSSHCheckVerdict, &w.verdict); err == nil {
			s.forgetCheck(w.hash)
		}
	}()
	return "", nil, nil
}

// reaskSlack is how much earlier than the hold's start (now − HeldFor) a stored check may have
// been made and still be the hold's own: the two messages' delays differ a little.
const reaskSlack = time.Second

// holdCheck attaches the sshCheck reqID to a stored check: the one this same hold was given
// before (created since heldSince, give or take reaskSlack, for the same source, agent, local user and user, and no
// other request waiting on it), else a new one with info, within the limits on pending checks.
// A check decided while nobody waited comes back as final.
func (s *Server) holdCheck(nc *nodeConn, reqID uint64, req *controlws.SSHCheckRequest, info CheckInfo, heldSince time.Time) (*checkWaiter, *controlws.SSHCheckVerdict, error) {
	f := &s.flows
	f.mu.Lock()
	defer f.mu.Unlock()
	now := s.now()
	var (
		found *store.Check
		id    string
		final *controlws.SSHCheckVerdict
	)
	err := s.st.Update(s.ctx, func(tx store.Tx) error {
		found, final = nil, nil
		if _, err := tx.DeleteExpiredFlows(now); err != nil {
			return err
		}
		old, err := tx.ChecksFor(info.DstNode.ID, info.SrcNode.ID, info.LocalUser)
		if err != nil {
			return err
		}
		for i := range old {
			c := &old[i]
			var ci CheckInfo
			if f.checks[string(c.Hash)] != nil || c.UserID != info.User.ID || c.Created.Before(heldSince.Add(-reaskSlack)) ||
				json.Unmarshal(c.Info, &ci) != nil {
				continue
			}
			if c.Verdict != "" {
				final = &controlws.SSHCheckVerdict{Verdict: c.Verdict, User: ci.User.Email, Message: c.Message}
				return tx.DeleteCheck(c.Hash)
			}
			found, info = c, ci
			return nil
		}
		bySrc, byDst, total, err := tx.CountChecks(info.SrcNode.ID, info.DstNode.ID)
		switch {
		case err != nil:
			return err
		case total >= MaxPendingChecks:
			return errf(controlws.CodeTooMany, "control has %d SSH checks pending, its limit: try again in a few minutes", total)
		case bySrc >= MaxPendingChecksPerSource:
			return errf(controlws.CodeTooMany, "%d SSH checks are pending for logins from %s, the limit: complete or cancel one first",
				bySrc, info.SrcNode.Name)
		case byDst >= MaxPendingChecksPerDest:
			return errf(controlws.CodeTooMany, "%d SSH checks are pending on %s, the limit: complete or cancel one first",
				byDst, info.DstNode.Name)
		}
		id = newFlowID()
		b, err := json.Marshal(info)
		if err != nil {
			return err
		}
		return tx.InsertCheck(&store.Check{Hash: []byte(flowHash(id)), SrcNode: info.SrcNode.ID, DstNode: info.DstNode.ID,
			UserID: info.User.ID, LocalUser: info.LocalUser, Info: b, Created: now.UTC(), Expires: info.Expires})
	})
	if err != nil || final != nil {
		return nil, final, err
	}
	w := &checkWaiter{info: info, nc: nc, reqID: reqID, done: make(chan struct{})}
	if found != nil {
		w.hash = string(found.Hash)
		w.info.ID = ""
	} else {
		w.hash, w.info.ID = flowHash(id), id
	}
	created := now
	if found != nil {
		created = found.Created
	}
	user, period := info.User.Email, info.Expires.Sub(created)
	w.timer = time.AfterFunc(w.info.Expires.Sub(now), func() {
		s.dropCheck(w, fmt.Sprintf("%s did not re-authenticate within %v", user, period))
	})
	if f.checks == nil {
		f.checks = map[string]*checkWaiter{}
	}
	f.checks[w.hash] = w
	return w, nil, nil
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
	var w *checkWaiter
	for _, c := range nc.s.flows.checks {
		if c.nc == nc && c.reqID == reqID {
			w = c
			break
		}
	}
	nc.s.flows.mu.Unlock()
	if w != nil {
		nc.s.dropCheck(w, "the agent gave up the login")
	}
}

// takeCheckLocked removes the waiter on hash (if still attached) from the waiters; f.mu is held.
func (f *flows) takeCheckLocked(hash string) *checkWaiter {
	w := f.checks[hash]
	if w != nil {
		delete(f.checks, hash)
		w.timer.Stop()
	}
	return w
}

// detachCheck forgets w but keeps its stored check, for the agent's next ask.
func (s *Server) detachCheck(w *checkWaiter) {
	s.flows.mu.Lock()
	defer s.flows.mu.Unlock()
	if s.flows.checks[w.hash] == w {
		s.flows.takeCheckLocked(w.hash)
	}
}

// dropCheck ends w and its stored check with a reject (a timeout, the agent gave up or went
// away); false when w was decided already.
func (s *Server) dropCheck(w *checkWaiter, msg string) bool {
	s.flows.mu.Lock()
	defer s.flows.mu.Unlock()
	if s.flows.checks[w.hash] != w {
		return false
	}
	s.flows.takeCheckLocked(w.hash)
	if err := s.st.Update(context.Background(), func(tx store.Tx) error { return tx.DeleteCheck([]byte(w.hash)) }); err != nil {
		s.logf("control: dropping a check: %v", err)
	}
	s.wakeCheckLocked(w, controlws.CheckReject, msg)
	return true
}

// wakeCheckLocked gives w its verdict; its goroutine answers the agent.
func (s *Server) wakeCheckLocked(w *checkWaiter, verdict, msg string) {
	w.verdict = controlws.SSHCheckVerdict{Verdict: verdict, User: w.info.User.Email, Message: msg}
	close(w.done)
	s.logf("control: ssh check for %s on %s as %s: %s: %s", safetext.Bounded(w.info.User.Email, 0),
		w.info.DstNode.Name, safetext.Bounded(w.info.LocalUser, 0), verdict, safetext.Bounded(msg, 512))
}

// forgetCheck removes a stored check whose verdict the agent has.
func (s *Server) forgetCheck(hash string) {
	if err := s.st.Update(context.Background(), func(tx store.Tx) error { return tx.DeleteCheck([]byte(hash)) }); err != nil {
		s.logf("control: forgetting a decided check: %v", err)
	}
}

// decideCheck records the verdict of the pending check id in the store and wakes the agent's
// request waiting on it, if any (else the agent's next ask gets the verdict).
func (s *Server) decideCheck(ctx context.Context, id, verdict, msg string) error {
	f := &s.flows
	f.mu.Lock()
	defer f.mu.Unlock()
	hash := flowHash(id)
	attached := f.checks[hash] != nil
	err := s.st.Update(ctx, func(tx store.Tx) error {
		if !attached { // kept for the agent's next ask
			return tx.DecideCheck([]byte(hash), verdict, msg)
		}
		// The waiting request gets the verdict now. Should its answer be lost in a crash,
		// the agent's next ask finds the recorded authentication (accept) or a new check.
		if c, err := tx.CheckByHash([]byte(hash)); err != nil || c.Verdict != "" {
			return store.ErrNotFound
		}
		return tx.DeleteCheck([]byte(hash))
	})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("control: check %q: %w (decided meanwhile)", shortID(id), ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("control: deciding check %s: %w", shortID(id), err)
	}
	if w := f.takeCheckLocked(hash); w != nil {
		s.wakeCheckLocked(w, verdict, msg)
	} else {
		s.logf("control: ssh check %s: %s while its agent is away: %s", shortID(id), verdict, safetext.Bounded(msg, 512))
	}
	return nil
}

// storedCheck returns the pending, unexpired check id.
func (s *Server) storedCheck(ctx context.Context, id string) (CheckInfo, error) {
	var c store.Check
	err := s.st.Read(ctx, func(tx store.Tx) (err error) {
		c, err = tx.CheckByHash([]byte(flowHash(id)))
		return err
	})
	var info CheckInfo
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && (c.Verdict != "" || !s.now().Before(c.Expires)):
		return info, fmt.Errorf("control: check %q: %w (unknown, decided or expired)", shortID(id), ErrNotFound)
	case err != nil:
		return info, fmt.Errorf("control: check %s: %w", shortID(id), err)
	}
	if err := json.Unmarshal(c.Info, &info); err != nil {
		return info, fmt.Errorf("control: check %s: stored info: %w", shortID(id), err)
	}
	info.ID = id
	return info, nil
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
	return s.storedCheck(ctx, id)
}

// CompleteCheck lets the held login under id in: userID (who just authenticated with method)
// must be the user the check waits for, else an error wrapping ErrForbidden (recorded as a
// failed check). The authentication is recorded (RecordAuth, kind "check"), so the user's
// next logins within the rule's check period pass at once.
func (s *Server) CompleteCheck(ctx context.Context, id string, userID int64, method AuthMethod) error {
	info, err := s.storedCheck(ctx, id)
	if err != nil {
		return err
	}
	detail := fmt.Sprintf("SSH as %q on %s from %s", info.LocalUser, info.DstNode.Name, info.SrcNode.Name)
	if userID != info.User.ID {
		if err := s.RecordAuth(ctx, userID, method, AuthCheck, false,
			fmt.Sprintf("tried to complete the check of %s: %s", info.User.Email, detail)); err != nil {
			s.logf("control: recording a refused check: %v", err)
		}
		return fmt.Errorf("control: check %s waits for %s: %w", shortID(id), info.User.Email, ErrForbidden)
	}
	if err := s.RecordAuth(ctx, userID, method, AuthCheck, true, detail); err != nil {
		return fmt.Errorf("control: recording the check: %w", err)
	}
	return s.decideCheck(ctx, id, controlws.CheckAccept, fmt.Sprintf("%s re-authenticated (%s)", info.User.Email, method))
}

// DeclineCheck refuses the held login under id; the SSH client is told it was declined.
func (s *Server) DeclineCheck(ctx context.Context, id string) error {
	info, err := s.storedCheck(ctx, id)
	if err != nil {
		return err
	}
	if err := s.RecordAuth(ctx, info.User.ID, "", AuthCheck, false,
		fmt.Sprintf("declined: SSH as %q on %s from %s", info.LocalUser, info.DstNode.Name, info.SrcNode.Name)); err != nil {
		s.logf("control: recording a declined check: %v", err)
	}
	return s.decideCheck(ctx, id, controlws.CheckReject, fmt.Sprintf("%s declined the login", info.User.Email))
}
