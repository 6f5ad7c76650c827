package control

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"tsconnect/controlws"
)

// RecordingViewer reports whether user userID may list and watch session recordings:
// admins, and the users the policy's recordingViewers names. The reason says why not.
func (s *Server) RecordingViewer(ctx context.Context, userID int64) (ok bool, reason string, err error) {
	u, err := s.UserByID(ctx, userID)
	if err != nil {
		return false, "", err
	}
	if u.Role == RoleAdmin {
		return true, "", nil
	}
	s.mu.RLock()
	p, groups := s.policy, s.groups[userID]
	s.mu.RUnlock()
	if p.RecordingViewer(u.Email, groups) {
		return true, "", nil
	}
	return false, fmt.Sprintf("%s is a member the policy's recordingViewers does not name: only admins and they may watch recordings", u.Email), nil
}

// recordingViewer answers a recorder node asking whether a peer's owner may view
// recordings. Only a node that an ssh rule's recorder names may ask.
func (nc *nodeConn) recordingViewer(ctx context.Context, env *controlws.Envelope) (string, any, error) {
	var req controlws.RecordingViewerRequest
	if err := json.Unmarshal(env.Body, &req); err != nil {
		return "", nil, errf(controlws.CodeBadRequest, "recordingViewer: %v", err)
	}
	id := nc.nodeID.Load()
	if id == 0 {
		return "", nil, errf(controlws.CodeNotRegistered, "recordingViewer before register or mapRequest on this connection")
	}
	s := nc.s
	s.mu.RLock()
	self, ok := s.nodes[id]
	recorder := ok && s.policy.Recorder(s.policyNodeLocked(id, self))
	peer, found := s.nodes[req.Node]
	var tagged bool
	var owner int64
	var name string
	if found {
		tagged, owner, name = len(peer.n.Tags) > 0, peer.n.User, peer.n.Name
	}
	s.mu.RUnlock()
	no := func(reason string) (string, any, error) {
		return controlws.TypeRecordingViewerAnswer, &controlws.RecordingViewerAnswer{Reason: reason}, nil
	}
	switch {
	case !recorder:
		return "", nil, errf(controlws.CodeBadRequest, "recordingViewer: this node is not a recorder (no ssh rule's recorder names it)")
	case !found:
		return no(fmt.Sprintf("node %d is not a node of this network", req.Node))
	case tagged || owner == 0:
		return no(fmt.Sprintf("node %s is tagged: it belongs to no user who could view recordings", name))
	}
	allowed, reason, err := s.RecordingViewer(ctx, owner)
	if err != nil {
		return "", nil, errf(controlws.CodeInternal, "recordingViewer: %v", err)
	}
	u := s.userLogin(owner)
	return controlws.TypeRecordingViewerAnswer, &controlws.RecordingViewerAnswer{Allowed: allowed, User: u, Reason: reason}, nil
}

// userLogin is user id's login name ("" when unknown).
func (s *Server) userLogin(id int64) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.users[id].LoginName
}

// RecorderNode is a recorder node as the console offers it to a viewer.
type RecorderNode struct {
	ID      int64
	Name    string
	Address netip.Addr // its first overlay address (IPv4 when it has one)
}

// RecorderNodes lists the recorder nodes (those an ssh rule's recorder names), by name.
func (s *Server) RecorderNodes() []RecorderNode {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []RecorderNode
	for id, ln := range s.nodes {
		if ln.loggedOut || len(ln.n.Addresses) == 0 || !s.policy.Recorder(s.policyNodeLocked(id, ln)) {
			continue
		}
		out = append(out, RecorderNode{ID: id, Name: ln.n.Name, Address: ln.n.Addresses[0].Addr()})
	}
	slices.SortFunc(out, func(a, b RecorderNode) int { return strings.Compare(a.Name, b.Name) })
	return out
}
