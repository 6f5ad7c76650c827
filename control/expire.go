package control

import (
	"context"
	"errors"
	"fmt"
	"time"

	"tsconnect/control/store"
	"tsconnect/controlws"
)

// NodeState is a live node with what the console shows beside it.
type NodeState struct {
	Node controlws.Node
	// LoggedOut nodes are out of every map until they register again.
	LoggedOut bool
	// Expired nodes had their key expired by an admin (they are also LoggedOut).
	Expired bool
	// KeyExpired nodes are logged in but their key passed Node.KeyExpiry: they are in no
	// map until they re-authenticate. KeyExpiryDisabled: an admin made the key never expire
	// (Node.KeyExpiry is then zero).
	KeyExpired, KeyExpiryDisabled bool
}

// nodeState is n's NodeState at now, Online not set.
func nodeState(n store.Node, now time.Time) NodeState {
	return NodeState{Node: toNode(n), LoggedOut: n.LoggedOut, Expired: n.LoggedOut && !n.Expired.IsZero(),
		KeyExpired: !n.LoggedOut && keyExpiredAt(n, now), KeyExpiryDisabled: n.KeyExpiryDisabled}
}

// NodeStates returns every live node by ID with Online, LastSeen and its logged-out and
// expired state. Deleted nodes are not included.
func (s *Server) NodeStates(ctx context.Context) ([]NodeState, error) {
	var sn []store.Node
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		sn, err = tx.Nodes()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("control: list nodes: %w", err)
	}
	out := make([]NodeState, len(sn))
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i, n := range sn {
		out[i] = nodeState(n, now)
		out[i].Node.Online = s.onlineLocked(n.ID)
	}
	return out, nil
}

// NodeState returns one live node as NodeStates does, or an error wrapping ErrNotFound.
func (s *Server) NodeState(ctx context.Context, id int64) (NodeState, error) {
	var n store.Node
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		n, err = tx.NodeByID(id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) || (err == nil && !n.Deleted.IsZero()) {
		return NodeState{}, fmt.Errorf("control: no node %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return NodeState{}, fmt.Errorf("control: node %d: %w", id, err)
	}
	st := nodeState(n, s.now())
	s.mu.RLock()
	st.Node.Online = s.onlineLocked(n.ID)
	s.mu.RUnlock()
	return st, nil
}

// ExpireNode expires node id's key now: the node leaves every peer's map at once (so agents
// cut SSH sessions from it), the relay drops it and admits it no more, its control
// connections are closed, and it must register again with a new auth key (it keeps its
// name and addresses when it does). Expiring an expired node changes nothing.
func (s *Server) ExpireNode(ctx context.Context, id int64) (NodeState, error) {
	s.writeMu.Lock()
	var n store.Node
	already := false
	err := s.st.Update(ctx, func(tx store.Tx) error {
		var err error
		n, err = tx.NodeByID(id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && !n.Deleted.IsZero()) {
			return fmt.Errorf("control: no node %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if n.LoggedOut && !n.Expired.IsZero() {
			already = true
			return nil
		}
		n.LoggedOut, n.Expired = true, s.now().UTC()
		return tx.UpdateNode(&n)
	})
	if err != nil {
		s.writeMu.Unlock()
		if errors.Is(err, ErrNotFound) {
			return NodeState{}, err
		}
		return NodeState{}, fmt.Errorf("control: expire node %d: %w", id, err)
	}
	if already {
		s.writeMu.Unlock()
		return s.NodeState(ctx, id)
	}
	s.mu.Lock()
	s.cacheNode(n) // logged out: out of compiled rules and peers' maps
	var conns []*nodeConn
	for nc := range s.conns {
		if nc.nodeID.Load() == id {
			conns = append(conns, nc)
		}
	}
	s.mu.Unlock()
	s.publishChanged(n.ID)
	s.writeMu.Unlock()
	if s.relay != nil {
		s.relay.ClosePeer(n.NodeKey)
	}
	for _, nc := range conns {
		nc.closeWith(&controlws.Error{Code: controlws.CodeNotRegistered, Message: "this node's key was expired by an admin: register again with a new auth key"})
	}
	s.logf("control: expired the key of node %d %s", n.ID, n.Name)
	return s.NodeState(ctx, id)
}
