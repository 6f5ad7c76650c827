package control

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"

	"tsconnect/control/store"
	"tsconnect/controlws"
	"tsconnect/key"
)

// Replicas: several control servers on one shared store (PostgreSQL). Each committed write
// announces, in its own transaction, what it changed (store.Change: small IDs only); the
// other replicas load those rows and run the publish paths a local write runs, so the map
// streams they hold hear of it. A store that is not shared (SQLite) gets none of this.

// maxPendingChanges bounds the announced changes waiting to be applied: past it, the
// replica reloads everything instead (which is what a burst coalesces into).
const maxPendingChanges = 4096

// newOrigin names this replica in its announcements, fresh at every start.
func newOrigin() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// announcingStore is a store whose update transactions announce what they wrote.
type announcingStore struct {
	store.Store
	origin string
}

// Update runs fn with a Tx that records the changes fn makes and announces them at the
// end of fn, inside the transaction: they go out if, and when, it commits.
func (a *announcingStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	return a.Store.Update(ctx, func(tx store.Tx) error {
		rt := &recordingTx{Tx: tx}
		if err := fn(rt); err != nil {
			return err
		}
		an, ok := tx.(store.Announcer)
		if !ok {
			return errors.New("control: the shared store's transactions cannot announce changes")
		}
		return an.Announce(a.origin, rt.changes)
	})
}

// recordingTx notes the changes of the writes that other replicas cache.
type recordingTx struct {
	store.Tx
	changes []store.Change
}

func (t *recordingTx) note(k store.ChangeKind, id int64) {
	c := store.Change{Kind: k, ID: id}
	if !slices.Contains(t.changes, c) {
		t.changes = append(t.changes, c)
	}
}

// noted records change k of id when err is nil, and returns err.
func (t *recordingTx) noted(k store.ChangeKind, id int64, err error) error {
	if err == nil {
		t.note(k, id)
	}
	return err
}

func (t *recordingTx) SetSetting(name, value string) error {
	err := t.Tx.SetSetting(name, value)
	switch name {
	case settingPolicyLatest:
		return t.noted(store.ChangePolicy, 0, err)
	case settingRelayMesh, settingControlURLs:
		return t.noted(store.ChangeMesh, 0, err)
	}
	return err
}

func (t *recordingTx) InsertUser(u *store.User) error {
	err := t.Tx.InsertUser(u)
	return t.noted(store.ChangeUser, u.ID, err)
}

func (t *recordingTx) SetUserOIDC(userID int64, issuer, subject string) error {
	return t.noted(store.ChangeUser, userID, t.Tx.SetUserOIDC(userID, issuer, subject))
}

func (t *recordingTx) SetUserEmail(userID int64, email string) error {
	return t.noted(store.ChangeUser, userID, t.Tx.SetUserEmail(userID, email))
}

func (t *recordingTx) SetUserGroups(userID int64, groups []string) error {
	return t.noted(store.ChangeUser, userID, t.Tx.SetUserGroups(userID, groups))
}

func (t *recordingTx) DeleteUser(id int64) error {
	return t.noted(store.ChangeUser, id, t.Tx.DeleteUser(id))
}

func (t *recordingTx) InsertAuthKey(k *store.AuthKey) error {
	return t.noted(store.ChangeKeys, 0, t.Tx.InsertAuthKey(k))
}

func (t *recordingTx) UpdateAuthKey(k *store.AuthKey) error {
	return t.noted(store.ChangeKeys, 0, t.Tx.UpdateAuthKey(k))
}

func (t *recordingTx) InsertNode(n *store.Node) error {
	err := t.Tx.InsertNode(n)
	return t.noted(store.ChangeNode, n.ID, err)
}

func (t *recordingTx) UpdateNode(n *store.Node) error {
	return t.noted(store.ChangeNode, n.ID, t.Tx.UpdateNode(n))
}

func (t *recordingTx) SetSeen(n *store.Node) error {
	return t.noted(store.ChangeNode, n.ID, t.Tx.SetSeen(n))
}

func (t *recordingTx) SetSeenAll(ns []*store.Node) error {
	err := t.Tx.SetSeenAll(ns)
	for _, n := range ns {
		t.noted(store.ChangeNode, n.ID, err)
	}
	return err
}

func (t *recordingTx) SetLastSeen(id int64, at time.Time) error {
	return t.noted(store.ChangeNode, id, t.Tx.SetLastSeen(id, at))
}

func (t *recordingTx) PurgeNode(id int64) error {
	return t.noted(store.ChangeNode, id, t.Tx.PurgeNode(id))
}

// DecideCheck notes the agent's node of the check: the replica holding the agent's request
// wakes it with the verdict.
func (t *recordingTx) DecideCheck(hash []byte, verdict, message string) error {
	c, err := t.Tx.CheckByHash(hash)
	if err != nil {
		return err
	}
	return t.noted(store.ChangeCheck, c.DstNode, t.Tx.DecideCheck(hash, verdict, message))
}

// remoteChanges holds the announced changes not applied yet; its zero value is ready.
type remoteChanges struct {
	mu       sync.Mutex
	all      bool // reload everything
	pending  map[store.Change]struct{}
	presence map[presenceKey]bool // online (true) or gone, the latest heard of each
	wake     chan struct{}        // capacity 1
}

// presenceKey is a node on a replica.
type presenceKey struct {
	origin string
	id     int64
}

// addFrom queues the changes origin announced: presence in order (the latest wins),
// the others as add does.
func (r *remoteChanges) addFrom(origin string, changes []store.Change) {
	rest := changes[:0:0]
	r.mu.Lock()
	for _, c := range changes {
		if c.Kind != store.ChangeOnline && c.Kind != store.ChangeGone {
			rest = append(rest, c)
			continue
		}
		if r.presence == nil {
			r.presence = map[presenceKey]bool{}
		}
		if len(r.presence) < maxPendingChanges {
			r.presence[presenceKey{origin, c.ID}] = c.Kind == store.ChangeOnline
		}
	}
	r.mu.Unlock()
	r.add(rest, false)
}

// add queues changes (all of them, past maxPendingChanges) and wakes the applier.
func (r *remoteChanges) add(changes []store.Change, all bool) {
	r.mu.Lock()
	if r.pending == nil {
		r.pending = map[store.Change]struct{}{}
	}
	for _, c := range changes {
		if c.Kind == store.ChangeAll {
			all = true
		}
		r.pending[c] = struct{}{}
	}
	if all || len(r.pending) > maxPendingChanges {
		r.all, r.pending = true, nil
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// take returns the queued changes and presence and empties the queue.
func (r *remoteChanges) take() (changes []store.Change, all bool, presence map[presenceKey]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.pending {
		changes = append(changes, c)
	}
	all, r.all, r.pending = r.all, false, nil
	presence, r.presence = r.presence, nil
	return changes, all, presence
}

// sharedStore wraps st, when other replicas share it, so its writes announce themselves;
// origin names this replica in the announcements ("" for a store no one shares).
func sharedStore(st store.Store) (wrapped store.Store, origin string) {
	if _, ok := st.(store.Changes); !ok {
		return st, ""
	}
	origin = newOrigin()
	return &announcingStore{Store: st, origin: origin}, origin
}

// listenReplicas applies the changes the other replicas of st announce, until s closes.
// It does nothing for a store no one shares.
func (s *Server) listenReplicas(st store.Store, origin string) {
	ch, ok := st.(store.Changes)
	if !ok {
		return
	}
	s.remote.wake = make(chan struct{}, 1)
	s.wg.Add(1)
	go s.presenceLoop()
	if s.relay != nil {
		s.meshed.wake = make(chan struct{}, 1)
		s.wg.Add(1)
		go s.meshLoop()
	}
	if s.controlURL() != "" {
		s.replURLs.wake = make(chan struct{}, 1)
		s.wg.Add(1)
		go s.controlURLsLoop()
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		ch.Listen(s.ctx, store.Listener{
			Origin: origin,
			Apply:  func(origin string, c []store.Change) { s.remote.addFrom(origin, c) },
			Resync: func() { s.remote.add(nil, true) },
			Logf:   s.logf,
		})
	}()
	go func() {
		defer s.wg.Done()
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-s.remote.wake:
			}
			changes, all, presence := s.remote.take()
			if err := s.applyRemote(s.ctx, changes, all); err != nil && s.ctx.Err() == nil {
				s.logf("control: applying other replicas' changes: %v; reloading everything", err)
				s.remote.add(nil, true)
			}
			s.applyPresence(presence)
		}
	}()
}

// remoteState is what applyRemote loaded from the store.
type remoteState struct {
	policy  bool
	pv      PolicyVersion
	users   map[int64]*store.User // nil value: deleted
	nodes   map[int64]*store.Node // nil value: deleted or purged
	allRows bool                  // users and nodes hold every row: the others are gone
	checks  []int64               // agents' nodes with a check decided
}

// applyRemote loads what other replicas changed (everything, when all) and tells the
// streams as the local writes do.
func (s *Server) applyRemote(ctx context.Context, changes []store.Change, all bool) error {
	if len(changes) == 0 && !all {
		return nil
	}
	if all { // the lists of the replicas' relays and control URLs may have changed too
		s.meshed.meshChanged()
		s.replURLs.changed()
	}
	s.writeMu.Lock()
	locked := true
	defer func() {
		if locked {
			s.writeMu.Unlock()
		}
	}()
	rs := remoteState{users: map[int64]*store.User{}, nodes: map[int64]*store.Node{}, allRows: all}
	keys := all
	err := s.st.Read(ctx, func(tx store.Tx) error {
		if all {
			rs.policy = true
			s.meshed.meshChanged()
			users, err := tx.Users()
			if err != nil {
				return err
			}
			for i := range users {
				rs.users[users[i].ID] = &users[i]
			}
			nodes, err := tx.Nodes()
			if err != nil {
				return err
			}
			for i := range nodes {
				rs.nodes[nodes[i].ID] = &nodes[i]
			}
		}
		for _, c := range changes {
			if all {
				break
			}
			switch c.Kind {
			case store.ChangePolicy:
				rs.policy = true
			case store.ChangeKeys:
				keys = true
			case store.ChangeCheck:
				rs.checks = append(rs.checks, c.ID)
			case store.ChangeMesh:
				s.meshed.meshChanged()
				s.replURLs.changed()
			case store.ChangeUser:
				u, err := tx.UserByID(c.ID)
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
				rs.users[c.ID] = nil
				if err == nil {
					rs.users[c.ID] = &u
				}
			case store.ChangeNode:
				n, err := tx.NodeByID(c.ID)
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
				rs.nodes[c.ID] = nil
				if err == nil && n.Deleted.IsZero() {
					rs.nodes[c.ID] = &n
				}
			}
		}
		if rs.policy {
			p, pv, err := loadPolicy(tx)
			if err != nil {
				return err
			}
			s.mu.RLock()
			rs.policy = pv.Version != s.policyVer.Version
			s.mu.RUnlock()
			if rs.policy {
				s.mu.Lock()
				s.policy, s.policyVer = p, pv
				s.gen++
				s.rc.invalidate()
				s.mu.Unlock()
				rs.pv = pv
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	usersChanged, userGone := s.applyRemoteUsers(rs)
	drops, loggedIn := s.applyRemoteNodes(rs)
	switch {
	case userGone:
		// Peers of its nodes hold its profile, which only a full map takes out.
		s.eachStream((*stream).markFull)
	case rs.policy || usersChanged:
		s.publishAll()
	case keys:
		s.changes.notify()
	}
	s.writeMu.Unlock()
	locked = false
	for _, d := range drops {
		s.dropRemote(d)
	}
	if all || len(rs.checks) > 0 {
		s.wakeRemoteChecks(ctx, rs.checks, all)
	}
	for _, n := range loggedIn {
		s.answerRemoteLogins(ctx, n)
	}
	if rs.policy {
		s.logf("control: policy version %d in force (set through another replica, author %q)", rs.pv.Version, rs.pv.Author)
	}
	return nil
}

// applyRemoteUsers updates the cached users from rs; it reports whether any changed and
// whether one is gone. Callers hold writeMu.
func (s *Server) applyRemoteUsers(rs remoteState) (changed, gone bool) {
	s.mu.Lock()
	var touched []int64
	if rs.allRows {
		for id := range s.users {
			if _, ok := rs.users[id]; !ok {
				rs.users[id] = nil
			}
		}
	}
	for id, u := range rs.users {
		if u == nil {
			if _, ok := s.users[id]; ok {
				delete(s.users, id)
				delete(s.groups, id)
				gone = true
			}
			continue
		}
		if old, ok := s.users[id]; ok && old == profile(*u) && slices.Equal(s.groups[id], u.Groups) {
			continue
		}
		s.users[id] = profile(*u)
		if len(u.Groups) > 0 {
			s.groups[id] = u.Groups
		} else {
			delete(s.groups, id)
		}
		touched = append(touched, id)
	}
	changed = gone || len(touched) > 0
	if changed {
		s.gen++
		s.rc.invalidate()
	}
	s.mu.Unlock()
	for _, id := range touched {
		s.publishUser(id)
	}
	return changed, gone
}

// remoteDrop is a node another replica deleted or logged out whose connections to this
// replica (and its relay) must end.
type remoteDrop struct {
	nodeKey key.Public
	conns   []*nodeConn
	why     *controlws.Error
}

// applyRemoteNodes updates the cached nodes from rs and publishes each change; it returns
// the connections to end once writeMu is released, and the nodes that changed and are
// logged in (an interactive login completed elsewhere may have registered one). Callers
// hold writeMu.
func (s *Server) applyRemoteNodes(rs remoteState) (drops []remoteDrop, loggedIn []store.Node) {
	if rs.allRows {
		s.mu.RLock()
		for id := range s.nodes {
			if _, ok := rs.nodes[id]; !ok {
				rs.nodes[id] = nil
			}
		}
		s.mu.RUnlock()
	}
	for id, n := range rs.nodes {
		s.mu.RLock()
		old, cached := s.nodes[id]
		s.mu.RUnlock()
		if n == nil {
			if cached {
				drops = append(drops, remoteDrop{nodeKey: old.n.Key, conns: s.forgetNode(id),
					why: &controlws.Error{Code: controlws.CodeNodeDeleted, Message: "this node was deleted"}})
			}
			continue
		}
		if cached && old.loggedOut == n.LoggedOut {
			nn := toNode(*n)
			seen := nn.LastSeen
			nn.LastSeen = old.n.LastSeen
			if reflect.DeepEqual(old.n, nn) {
				// Unchanged, or only its last-seen time (a sweep's refresh, a stream's
				// end): kept without telling the streams, as a local sweep does.
				s.mu.Lock()
				if !seen.Equal(old.n.LastSeen) {
					old.n.LastSeen = seen
					old.js.Store(nil)
				}
				s.mu.Unlock()
				continue
			}
		}
		s.mu.Lock()
		s.cacheNode(*n)
		var d remoteDrop
		switch {
		case cached && !old.loggedOut && n.LoggedOut:
			d = remoteDrop{nodeKey: n.NodeKey, conns: s.connsOfLocked(id),
				why: &controlws.Error{Code: controlws.CodeNotRegistered, Message: "this node was logged out or its key expired: register again with a new auth key"}}
		case cached && old.n.Key != n.NodeKey:
			d = remoteDrop{nodeKey: old.n.Key} // rotated away: the old key is no longer admitted
		}
		s.mu.Unlock()
		if !d.nodeKey.IsZero() {
			drops = append(drops, d)
		}
		s.publishChanged(id)
		if !n.LoggedOut {
			loggedIn = append(loggedIn, *n)
		}
	}
	return drops, loggedIn
}

// wakeRemoteChecks answers the agents' requests waiting here on checks another replica
// decided: those held by the agents' nodes dsts (every one, when all).
func (s *Server) wakeRemoteChecks(ctx context.Context, dsts []int64, all bool) {
	f := &s.flows
	f.mu.Lock()
	defer f.mu.Unlock()
	for hash, w := range f.checks {
		if !all && !slices.Contains(dsts, w.info.DstNode.ID) {
			continue
		}
		var c store.Check
		err := s.st.Update(ctx, func(tx store.Tx) error {
			var err error
			if c, err = tx.CheckByHash([]byte(hash)); err != nil || c.Verdict == "" {
				return err
			}
			return tx.DeleteCheck([]byte(hash))
		})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.logf("control: a check decided through another replica: %v", err)
		}
		if err == nil && c.Verdict != "" {
			f.takeCheckLocked(hash)
			s.wakeCheckLocked(w, c.Verdict, c.Message)
		}
	}
}

// answerRemoteLogins answers the register requests waiting here for an interactive login
// of n's machine and node key, which another replica completed by registering n.
func (s *Server) answerRemoteLogins(ctx context.Context, n store.Node) {
	f := &s.flows
	f.mu.Lock()
	var waiters []*loginWaiter
	for _, w := range f.logins {
		if w.nc.machine == n.MachineKey && w.req.NodeKey == n.NodeKey {
			waiters = append(waiters, w)
		}
	}
	f.mu.Unlock()
	for _, w := range waiters {
		if !s.endLogin(w, true) {
			continue
		}
		r, err := s.register(ctx, w.nc.machine, &w.req) // an ordinary re-register now
		if err != nil {
			s.logf("control: answering machine %s's register after a login through another replica: %v", w.nc.machine.ShortString(), err)
			w.nc.reply(w.reqID, controlws.TypeError, errf(controlws.CodeInternal, "registration failed on the server"))
			continue
		}
		w.nc.nodeID.Store(r.Node.ID)
		w.nc.reply(w.reqID, controlws.TypeRegisterResponse, r)
		s.logf("control: interactive login of machine %s completed through another replica: node %d %s", w.nc.machine.ShortString(), r.Node.ID, r.Node.Name)
	}
}

// connsOfLocked returns node id's control connections. Callers hold s.mu.
func (s *Server) connsOfLocked(id int64) []*nodeConn {
	var conns []*nodeConn
	for nc := range s.conns {
		if nc.nodeID.Load() == id {
			conns = append(conns, nc)
		}
	}
	return conns
}

// dropRemote ends d's connections to control and to the relay.
func (s *Server) dropRemote(d remoteDrop) {
	for _, nc := range d.conns {
		nc.closeWith(d.why)
	}
	if s.relay != nil {
		s.relay.ClosePeer(d.nodeKey)
	}
}

// leaseEphemeral is the lease on deleting stale ephemeral nodes, which one replica holds.
const leaseEphemeral = "ephemeral-sweep"

// sweepStale returns, of the ephemeral nodes stale in this replica's cache, those the sweep
// is to delete. Alone on its store, that is all of them. A replica deletes only while it
// holds leaseEphemeral (taken or renewed here for EphemeralGrace: the holder sweeps every
// half grace, and another replica takes over within a grace of its death), and only nodes
// whose stored last-seen time is stale too: another replica refreshes those online there.
func (s *Server) sweepStale(tx store.Tx, stale []int64, now, cutoff time.Time) ([]int64, error) {
	if s.origin == "" {
		return stale, nil
	}
	held, err := tx.TryLease(leaseEphemeral, s.origin, now, s.cfg.EphemeralGrace)
	if err != nil || !held {
		return nil, err
	}
	var out []int64
	for _, id := range stale {
		n, err := tx.NodeByID(id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n.Deleted.IsZero() && n.LastSeen.Before(cutoff) {
			out = append(out, id)
		}
	}
	return out, nil
}

// leaveReplicas, in the transaction of a clean stop, gives up this replica's lease and its
// relay's entry in the relays' list, so the others take over at once. Alone on its store,
// control has neither.
func (s *Server) leaveReplicas(tx store.Tx) error {
	if s.origin == "" {
		return nil
	}
	for _, l := range []string{leaseEphemeral, leaseAuditSweep} {
		if err := tx.ReleaseLease(l, s.origin); err != nil {
			return err
		}
	}
	if err := s.dropControlURL(tx); err != nil {
		return err
	}
	if s.relay == nil {
		return nil
	}
	return s.dropMeshEntry(tx)
}
