package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"tsconnect/control/store"
	"tsconnect/controlws"
	"tsconnect/key"
)

// toNode converts a stored node to its wire form (Online not set).
func toNode(n store.Node) controlws.Node {
	var hi controlws.Hostinfo
	if len(n.Hostinfo) > 0 {
		// Written by us; a bad row (or one stored before the limits) only loses hostinfo.
		if json.Unmarshal(n.Hostinfo, &hi) != nil || hi.Validate() != nil {
			hi = controlws.Hostinfo{}
		}
	}
	return controlws.Node{
		ID:          n.ID,
		Name:        n.Name,
		Key:         n.NodeKey,
		MachineKey:  n.MachineKey,
		Addresses:   []netip.Prefix{netip.PrefixFrom(n.IPv4, 32), netip.PrefixFrom(n.IPv6, 128)},
		HomeDERP:    hi.HomeDERP,
		Endpoints:   hi.Endpoints,
		User:        n.UserID,
		Tags:        n.Tags,
		SSH:         hi.SSH,
		SSHHostKeys: hi.SSHHostKeys,
		SSHTools:    hi.SSHTools,
		Hostname:    hi.Hostname,
		OS:          hi.OS,
		Ephemeral:   n.Ephemeral,
		LastSeen:    n.LastSeen,
		Created:     n.Created,
		KeyExpiry:   wireKeyExpiry(n),
	}
}

// wireKeyExpiry is n's key expiry as maps carry it: zero when expiry is disabled.
func wireKeyExpiry(n store.Node) time.Time {
	if n.KeyExpiryDisabled {
		return time.Time{}
	}
	return n.KeyExpiry
}

// cacheNode records a live node in the caches. A node whose key expired is cached as
// logged out (in no map), and one whose key will expire is scheduled on the key timer.
// Callers hold s.mu or run before serving.
func (s *Server) cacheNode(n store.Node) {
	if old, ok := s.nodes[n.ID]; ok {
		delete(s.byKey, old.n.Key)
		delete(s.names, old.n.Name)
	}
	now := s.now()
	expired := keyExpiredAt(n, now)
	if !n.LoggedOut && !expired && !n.KeyExpiryDisabled && !n.KeyExpiry.IsZero() {
		s.keyTimer.schedule(n.ID, n.KeyExpiry, now)
	}
	ln := &liveNode{n: toNode(n), loggedOut: n.LoggedOut || expired, keyExpired: expired && !n.LoggedOut}
	if old, ok := s.nodes[n.ID]; !ok || !samePolicyView(old, ln) {
		if ok && len(s.streams) > 0 {
			// The peers to tell, should it leave their view (compiled before the change).
			prev := s.peersNowLocked(n.ID)
			ln.prevPeers.Store(&prev)
		}
		s.rc.touch(n.ID)
		s.gen++
	}
	s.nodes[n.ID] = ln
	s.byKey[n.NodeKey] = n.ID
	s.names[n.Name] = n.ID
	s.addrs[n.IPv4] = n.ID
	s.addrs[n.IPv6] = n.ID
}

// uncacheNode forgets a node. Callers hold s.mu.
func (s *Server) uncacheNode(id int64) {
	ln, ok := s.nodes[id]
	if !ok {
		return
	}
	delete(s.nodes, id)
	s.rc.touch(id)
	s.gen++
	if s.byKey[ln.n.Key] == id {
		delete(s.byKey, ln.n.Key)
	}
	delete(s.names, ln.n.Name)
	for _, p := range ln.n.Addresses {
		delete(s.addrs, p.Addr())
	}
}

// nodeView returns the cached node with Online filled. Callers hold s.mu (read).
func (s *Server) nodeView(ln *liveNode) controlws.Node {
	n := ln.n
	n.Online = s.onlineLocked(n.ID)
	return n
}

// onlineChanged drops ln's encoded entry, whose Online may no longer hold. Callers hold s.mu.
func (s *Server) onlineChanged(id int64) {
	if ln, ok := s.nodes[id]; ok {
		ln.js.Store(nil)
	}
}

// Nodes returns every live node by ID, with Online (it has a live map stream) and LastSeen.
// Logged-out nodes are included; deleted ones are not.
func (s *Server) Nodes(ctx context.Context) ([]controlws.Node, error) {
	var sn []store.Node
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		sn, err = tx.Nodes()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("control: list nodes: %w", err)
	}
	out := make([]controlws.Node, len(sn))
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i, n := range sn {
		out[i] = toNode(n)
		out[i].Online = s.onlineLocked(n.ID)
	}
	return out, nil
}

// DeleteNode deletes a node: it leaves every peer's map, its control connections are
// closed, the relay drops its connection and admits it no more, and its machine can come
// back only by registering again with a new auth key.
func (s *Server) DeleteNode(ctx context.Context, id int64) error {
	s.writeMu.Lock()
	var nk key.Public
	err := s.st.Update(ctx, func(tx store.Tx) error {
		n, err := tx.NodeByID(id)
		if err != nil {
			return err
		}
		if !n.Deleted.IsZero() {
			return fmt.Errorf("node %d already deleted: %w", id, store.ErrNotFound)
		}
		nk = n.NodeKey
		n.Deleted = s.now().UTC()
		return tx.UpdateNode(&n)
	})
	if errors.Is(err, store.ErrNotFound) {
		s.writeMu.Unlock()
		return fmt.Errorf("control: no node %d: %w", id, ErrNotFound)
	}
	if err != nil {
		s.writeMu.Unlock()
		return fmt.Errorf("control: delete node %d: %w", id, err)
	}
	conns := s.forgetNode(id)
	s.writeMu.Unlock()
	s.dropNode(nk, conns)
	s.logf("control: deleted node %d", id)
	return nil
}

// forgetNode removes a deleted node from the caches and every map. It returns the node's
// control connections, to be closed once writeMu is released. Callers hold writeMu.
func (s *Server) forgetNode(id int64) []*nodeConn {
	s.updates.forget(id)
	s.auditRate.forget(id)
	s.mu.Lock()
	peers := s.peersNowLocked(id)
	s.uncacheNode(id)
	var conns []*nodeConn
	for nc := range s.conns {
		if nc.nodeID.Load() == id {
			conns = append(conns, nc)
		}
	}
	s.mu.Unlock()
	s.publishRemoved(id, peers)
	return conns
}

// dropNode ends a deleted node's connections to control and to the relay.
func (s *Server) dropNode(nk key.Public, conns []*nodeConn) {
	for _, nc := range conns {
		nc.closeWith(&controlws.Error{Code: controlws.CodeNodeDeleted, Message: "this node was deleted"})
	}
	if s.relay != nil {
		s.relay.ClosePeer(nk)
	}
}

// verifyDERPClient admits to the embedded relay only node keys of live, logged-in nodes.
func (s *Server) verifyDERPClient(_ context.Context, k key.Public) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.byKey[k]
	if !ok {
		return fmt.Errorf("node key %s is not registered", k.ShortString())
	}
	if ln := s.nodes[id]; ln.keyExpired {
		return fmt.Errorf("node key %s has expired", k.ShortString())
	} else if ln.loggedOut {
		return fmt.Errorf("node key %s is logged out", k.ShortString())
	}
	return nil
}

// samePolicyView reports whether a and b look the same to the policy: same addresses,
// owner, tags and logged-out state (so compiled rules need no rebuild).
func samePolicyView(a, b *liveNode) bool {
	return a.loggedOut == b.loggedOut && a.n.User == b.n.User && a.n.Name == b.n.Name &&
		slices.Equal(a.n.Addresses, b.n.Addresses) && slices.Equal(a.n.Tags, b.n.Tags)
}
