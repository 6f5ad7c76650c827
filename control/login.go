package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"tsconnect/control/store"
	"tsconnect/controlws"
	"tsconnect/internal/safetext"
)

// Interactive node login: a node registering without an auth key (controlws.RegisterRequest
// with Interactive set) gets a URL; a user who signs in there (the web page calls
// CompleteLogin) owns the node, which is registered at once on the waiting connection.

// LoginTimeout is how long an interactive login (and its URL) stays valid.
const LoginTimeout = 10 * time.Minute

// Limits on pending interactive logins, which anyone who can reach control may start (they
// are stored for LoginTimeout; per connection counted in memory, per source and in all in
// the store). Past one, the register is refused with controlws.CodeTooMany.
const (
	// MaxPendingLoginsPerConn bounds the pending logins of one control connection.
	MaxPendingLoginsPerConn = 2
	// MaxPendingLoginsPerSource bounds those of one client address (an IPv6 /64 counts as one).
	MaxPendingLoginsPerSource = 16
	// MaxPendingLogins bounds those of the whole server.
	MaxPendingLogins = 1024
)

// LoginInfo describes a node waiting for a user to sign in and own it.
type LoginInfo struct {
	ID       string    `json:"id"`
	Hostname string    `json:"hostname"` // as the node asked
	OS       string    `json:"os"`
	Expires  time.Time `json:"expires"`
}

// loginWaiter is a register request waiting on a stored login (store.Login, the truth).
type loginWaiter struct {
	hash  string
	info  LoginInfo
	nc    *nodeConn
	reqID uint64
	req   controlws.RegisterRequest
	timer *time.Timer
	done  chan struct{} // closed when the wait ends (completed, expired, node gone)
}

// registerInteractive serves a register without auth key that asks for an interactive login.
func (nc *nodeConn) registerInteractive(env *controlws.Envelope, req *controlws.RegisterRequest) (string, any, error) {
	s := nc.s
	live, err := s.machineLoggedIn(s.ctx, nc)
	if err != nil {
		return "", nil, err
	}
	if live && !req.Reauth { // nothing to log in: the usual idempotent re-register or key rotation
		r, err := s.register(s.ctx, nc.machine, req)
		if err != nil {
			return "", nil, err
		}
		nc.nodeID.Store(r.Node.ID)
		return controlws.TypeRegisterResponse, r, nil
	}
	if req.NodeKey.IsZero() {
		return "", nil, errf(controlws.CodeBadRequest, "register: missing node key")
	}
	_, timeout := s.flows.timeouts()
	w := &loginWaiter{nc: nc, reqID: env.ID, req: *req, done: make(chan struct{})}
	id := newFlowID()
	w.hash = flowHash(id)
	w.info = LoginInfo{ID: id, Hostname: req.Hostinfo.Hostname, OS: req.Hostinfo.OS, Expires: s.now().Add(timeout).UTC()}
	if err := s.addLogin(w); err != nil {
		s.logf("control: machine %s from %s: interactive login refused: %s", nc.machine.ShortString(), nc.source, safetext.Escape(err.Error()))
		return "", nil, err
	}
	url := s.cfg.ServerURL + "/login/" + id
	s.logf("control: machine %s (%s) waits for an interactive login %s", nc.machine.ShortString(), safetext.Bounded(w.info.Hostname, 0), shortID(id))
	if err := nc.reply(env.ID, controlws.TypeLoginURL, &controlws.LoginURL{URL: url, Expires: w.info.Expires}); err != nil {
		s.endLogin(w, true)
		return "", nil, nil
	}
	nc.wg.Add(1)
	go func() {
		defer nc.wg.Done()
		select {
		case <-w.done:
		case <-nc.done:
			// Shutting down: the login stays, and completing it registers the machine.
			s.endLogin(w, s.ctx.Err() == nil)
		}
	}()
	return "", nil, nil
}

// machineLoggedIn reports whether nc's machine has a live, logged-in node whose key has not expired.
func (s *Server) machineLoggedIn(ctx context.Context, nc *nodeConn) (bool, error) {
	var live bool
	err := s.st.Read(ctx, func(tx store.Tx) error {
		n, err := tx.NodeByMachineKey(nc.machine)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		live = err == nil && n.Deleted.IsZero() && !n.LoggedOut && !keyExpiredAt(n, s.now())
		return err
	})
	return live, err
}

// addLogin stores w's login and attaches w, unless a limit on pending logins is reached.
func (s *Server) addLogin(w *loginWaiter) error {
	f := &s.flows
	f.mu.Lock()
	defer f.mu.Unlock()
	now := s.now()
	b, err := json.Marshal(&w.req)
	if err != nil {
		return err
	}
	err = s.st.Update(s.ctx, func(tx store.Tx) error {
		if _, err := tx.DeleteExpiredFlows(now); err != nil {
			return err
		}
		bySource, total, err := tx.CountLogins(w.nc.source)
		if err != nil {
			return err
		}
		if err := f.loginCapLocked(w.nc, bySource, total); err != nil {
			return err
		}
		return tx.InsertLogin(&store.Login{Hash: []byte(w.hash), MachineKey: w.nc.machine, NodeKey: w.req.NodeKey, Source: w.nc.source,
			Request: b, Created: now.UTC(), Expires: w.info.Expires})
	})
	if err != nil {
		return err
	}
	timeout := w.info.Expires.Sub(now)
	w.timer = time.AfterFunc(timeout, func() {
		if s.endLogin(w, true) {
			w.nc.reply(w.reqID, controlws.TypeError, errf(controlws.CodeLoginExpired, "nobody signed in at the login URL within %v", timeout))
		}
	})
	if f.logins == nil {
		f.logins = map[string]*loginWaiter{}
	}
	f.logins[w.hash] = w
	return nil
}

// endLogin detaches w, and with drop also forgets its stored login; it reports whether this
// call ended it.
func (s *Server) endLogin(w *loginWaiter, drop bool) bool {
	s.flows.mu.Lock()
	defer s.flows.mu.Unlock()
	if s.flows.logins[w.hash] != w {
		return false
	}
	delete(s.flows.logins, w.hash)
	w.timer.Stop()
	close(w.done)
	if drop {
		if err := s.st.Update(context.Background(), func(tx store.Tx) error { return tx.DeleteLogin([]byte(w.hash)) }); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.logf("control: dropping a login: %v", err)
		}
	}
	return true
}

// storedLogin returns the unexpired login id.
func (s *Server) storedLogin(ctx context.Context, id string) (store.Login, LoginInfo, error) {
	var l store.Login
	err := s.st.Read(ctx, func(tx store.Tx) (err error) {
		l, err = tx.LoginByHash([]byte(flowHash(id)))
		return err
	})
	var info LoginInfo
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && !s.now().Before(l.Expires):
		return l, info, fmt.Errorf("control: login %q: %w (unknown, completed or expired)", shortID(id), ErrNotFound)
	case err != nil:
		return l, info, fmt.Errorf("control: login %s: %w", shortID(id), err)
	}
	var req controlws.RegisterRequest
	if err := json.Unmarshal(l.Request, &req); err != nil {
		return l, info, fmt.Errorf("control: login %s: stored request: %w", shortID(id), err)
	}
	return l, LoginInfo{ID: id, Hostname: req.Hostinfo.Hostname, OS: req.Hostinfo.OS, Expires: l.Expires}, nil
}

// PendingLogin returns the node waiting under id, or an error wrapping ErrNotFound when
// there is none (unknown, completed, expired, or the node went away).
func (s *Server) PendingLogin(ctx context.Context, id string) (LoginInfo, error) {
	_, info, err := s.storedLogin(ctx, id)
	return info, err
}

// CompleteLogin registers the machine waiting under id to user userID (untagged; ephemeral
// if the node asked) and answers its register, if a connection still waits on it (after a
// restart of control, the node's next register finds the machine registered, and a register
// it sent meanwhile with the same node key is answered too); the node then follows its map
// as usual. Registration refusals (e.g. its node key bound to another machine) are returned
// and end the login. The caller records the sign-in (RecordAuth, kind "node-login").
func (s *Server) CompleteLogin(ctx context.Context, id string, userID int64) error {
	l, _, err := s.storedLogin(ctx, id)
	if err != nil {
		return err
	}
	var req controlws.RegisterRequest
	if err := json.Unmarshal(l.Request, &req); err != nil {
		return fmt.Errorf("control: login %s: stored request: %w", shortID(id), err)
	}
	f := &s.flows
	f.mu.Lock()
	err = s.st.Update(ctx, func(tx store.Tx) error { return tx.DeleteLogin(l.Hash) })
	var waiters []*loginWaiter // this login's, then the machine's other ones with the same node key
	if err == nil {
		if w := f.logins[string(l.Hash)]; w != nil {
			waiters = append(waiters, w)
		}
		for _, w := range f.logins {
			if w.hash != string(l.Hash) && w.nc.machine == l.MachineKey && w.req.NodeKey == l.NodeKey {
				waiters = append(waiters, w)
			}
		}
	}
	f.mu.Unlock()
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("control: login %q: %w (completed meanwhile)", shortID(id), ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("control: login %s: %w", shortID(id), err)
	}
	var own *loginWaiter
	if len(waiters) > 0 && waiters[0].hash == string(l.Hash) {
		own = waiters[0]
		s.endLogin(own, false)
	}
	r, err := s.registerAs(ctx, l.MachineKey, &req, &loginGrant{userID: userID, ephemeral: req.Ephemeral})
	if err != nil {
		var ce *controlws.Error
		if !errors.As(err, &ce) {
			ce = errf(controlws.CodeInternal, "registration failed on the server")
		}
		if own != nil {
			own.nc.reply(own.reqID, controlws.TypeError, ce)
		}
		return fmt.Errorf("control: login %s: %w", shortID(id), err)
	}
	s.logf("control: interactive login %s: node %d %s registered to %s", shortID(id), r.Node.ID, r.Node.Name, safetext.Bounded(r.User.LoginName, 0))
	for _, w := range waiters {
		if w != own && !s.endLogin(w, true) {
			continue
		}
		wr := r
		if w != own { // the machine is registered now: this request is an ordinary re-register
			if wr, err = s.register(ctx, w.nc.machine, &w.req); err != nil {
				s.logf("control: login %s: answering another register of machine %s: %v", shortID(id), w.nc.machine.ShortString(), err)
				continue
			}
		}
		w.nc.nodeID.Store(wr.Node.ID)
		if err := w.nc.reply(w.reqID, controlws.TypeRegisterResponse, wr); err != nil && w == own {
			return fmt.Errorf("control: login %s: node %s registered, but its connection failed: %w", shortID(id), r.Node.Name, err)
		}
	}
	return nil
}

// loginCapLocked refuses a new pending login for nc past a limit, given the stored logins
// from its source and in all; f.mu is held.
func (f *flows) loginCapLocked(nc *nodeConn, source, total int) *controlws.Error {
	limit := MaxPendingLogins
	if f.maxLogins > 0 {
		limit = f.maxLogins
	}
	if total >= limit {
		return errf(controlws.CodeTooMany, "control has %d interactive logins pending, its limit: try again in a few minutes", limit)
	}
	conn := 0
	for _, w := range f.logins {
		if w.nc == nc {
			conn++
		}
	}
	switch {
	case conn >= MaxPendingLoginsPerConn:
		return errf(controlws.CodeTooMany, "this connection has %d interactive logins pending, the limit: complete one or let it expire", conn)
	case source >= MaxPendingLoginsPerSource:
		return errf(controlws.CodeTooMany, "your address has %d interactive logins pending, the limit: complete one or let it expire", source)
	}
	return nil
}
