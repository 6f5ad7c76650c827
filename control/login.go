package control

import (
	"context"
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
// hold a request and a timer for LoginTimeout). Past one, the register is refused with
// controlws.CodeTooMany.
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

// pendingLogin is a register request waiting for its user.
type pendingLogin struct {
	info  LoginInfo
	nc    *nodeConn
	reqID uint64
	req   controlws.RegisterRequest
	timer *time.Timer
	done  chan struct{} // closed when the login ends (completed, expired, node gone)
}

// registerInteractive serves a register without auth key that asks for an interactive login.
func (nc *nodeConn) registerInteractive(env *controlws.Envelope, req *controlws.RegisterRequest) (string, any, error) {
	s := nc.s
	live, err := s.machineLoggedIn(s.ctx, nc)
	if err != nil {
		return "", nil, err
	}
	if live { // nothing to log in: the usual idempotent re-register or key rotation
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
	if err := s.flows.admitLogin(nc); err != nil {
		s.logf("control: machine %s from %s: interactive login refused: %s", nc.machine.ShortString(), nc.source, err.Message)
		return "", nil, err
	}
	pl := &pendingLogin{
		info: LoginInfo{ID: newFlowID(), Hostname: req.Hostinfo.Hostname, OS: req.Hostinfo.OS,
			Expires: s.now().Add(timeout).UTC()},
		nc: nc, reqID: env.ID, req: *req, done: make(chan struct{}),
	}
	pl.timer = time.AfterFunc(timeout, func() {
		if s.endLogin(pl) {
			nc.reply(pl.reqID, controlws.TypeError, errf(controlws.CodeLoginExpired, "nobody signed in at the login URL within %v", timeout))
		}
	})
	if err := s.flows.addLogin(pl); err != nil {
		pl.timer.Stop()
		return "", nil, err
	}
	url := s.cfg.ServerURL + "/login/" + pl.info.ID
	s.logf("control: machine %s (%s) waits for an interactive login %s", nc.machine.ShortString(), safetext.Bounded(pl.info.Hostname, 0), shortID(pl.info.ID))
	if err := nc.reply(env.ID, controlws.TypeLoginURL, &controlws.LoginURL{URL: url, Expires: pl.info.Expires}); err != nil {
		s.endLogin(pl)
		return "", nil, nil
	}
	nc.wg.Add(1)
	go func() {
		defer nc.wg.Done()
		select {
		case <-pl.done:
		case <-nc.done:
			s.endLogin(pl)
		}
	}()
	return "", nil, nil
}

// machineLoggedIn reports whether nc's machine has a live, logged-in node.
func (s *Server) machineLoggedIn(ctx context.Context, nc *nodeConn) (bool, error) {
	var live bool
	err := s.st.Read(ctx, func(tx store.Tx) error {
		n, err := tx.NodeByMachineKey(nc.machine)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		live = err == nil && n.Deleted.IsZero() && !n.LoggedOut
		return err
	})
	return live, err
}

// endLogin forgets pl; it reports whether this call ended it.
func (s *Server) endLogin(pl *pendingLogin) bool {
	s.flows.mu.Lock()
	defer s.flows.mu.Unlock()
	if s.flows.logins[pl.info.ID] != pl {
		return false
	}
	delete(s.flows.logins, pl.info.ID)
	pl.timer.Stop()
	close(pl.done)
	return true
}

func (s *Server) pendingLogin(id string) (*pendingLogin, error) {
	s.flows.mu.Lock()
	defer s.flows.mu.Unlock()
	pl, ok := s.flows.logins[id]
	if !ok || !s.now().Before(pl.info.Expires) {
		return nil, fmt.Errorf("control: login %q: %w (unknown, completed or expired)", shortID(id), ErrNotFound)
	}
	return pl, nil
}

// PendingLogin returns the node waiting under id, or an error wrapping ErrNotFound when
// there is none (unknown, completed, expired, or the node went away).
func (s *Server) PendingLogin(ctx context.Context, id string) (LoginInfo, error) {
	pl, err := s.pendingLogin(id)
	if err != nil {
		return LoginInfo{}, err
	}
	return pl.info, nil
}

// CompleteLogin registers the node waiting under id to user userID (untagged; ephemeral if
// the node asked) and answers it; the node then follows its map as usual. Registration
// refusals (e.g. its node key bound to another machine) are returned and end the login.
// The caller records the sign-in (RecordAuth, kind "node-login").
func (s *Server) CompleteLogin(ctx context.Context, id string, userID int64) error {
	pl, err := s.pendingLogin(id)
	if err != nil {
		return err
	}
	if !s.endLogin(pl) {
		return fmt.Errorf("control: login %q: %w (completed meanwhile)", shortID(id), ErrNotFound)
	}
	r, err := s.registerAs(ctx, pl.nc.machine, &pl.req, &loginGrant{userID: userID, ephemeral: pl.req.Ephemeral})
	if err != nil {
		var ce *controlws.Error
		if !errors.As(err, &ce) {
			ce = errf(controlws.CodeInternal, "registration failed on the server")
		}
		pl.nc.reply(pl.reqID, controlws.TypeError, ce)
		return fmt.Errorf("control: login %s: %w", shortID(id), err)
	}
	pl.nc.nodeID.Store(r.Node.ID)
	if err := pl.nc.reply(pl.reqID, controlws.TypeRegisterResponse, r); err != nil {
		return fmt.Errorf("control: login %s: node %s registered, but its connection failed: %w", shortID(id), r.Node.Name, err)
	}
	s.logf("control: interactive login %s: node %d %s registered to %s", shortID(id), r.Node.ID, r.Node.Name, safetext.Bounded(r.User.LoginName, 0))
	return nil
}

// admitLogin refuses a new pending login for nc past a limit (a fast check; addLogin has the
// last word under the same lock).
func (f *flows) admitLogin(nc *nodeConn) *controlws.Error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.loginCapLocked(nc)
}

// addLogin records pl unless a limit is reached meanwhile.
func (f *flows) addLogin(pl *pendingLogin) *controlws.Error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.loginCapLocked(pl.nc); err != nil {
		return err
	}
	if f.logins == nil {
		f.logins = map[string]*pendingLogin{}
	}
	f.logins[pl.info.ID] = pl
	return nil
}

func (f *flows) loginCapLocked(nc *nodeConn) *controlws.Error {
	total := MaxPendingLogins
	if f.maxLogins > 0 {
		total = f.maxLogins
	}
	if len(f.logins) >= total {
		return errf(controlws.CodeTooMany, "control has %d interactive logins pending, its limit: try again in a few minutes", total)
	}
	conn, source := 0, 0
	for _, pl := range f.logins {
		if pl.nc == nc {
			conn++
		}
		if pl.nc.source == nc.source {
			source++
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
