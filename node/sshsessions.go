package node

import (
	"context"
	"fmt"

	"tsconnect/controlws"
)

// ReportSSHSessions reports the node's live SSH logins over its current control connection
// and waits for the answer: the logins an admin ended (see controlws.Client.ReportSSHSessions).
// With no map stream to control it fails at once with an error wrapping ErrControlUnreachable.
func (n *Node) ReportSSHSessions(ctx context.Context, r controlws.SSHSessions) (*controlws.SSHSessionsAnswer, error) {
	cc, err := n.streamingConn()
	if err != nil {
		return nil, err
	}
	return cc.ReportSSHSessions(ctx, r)
}

// ReportSSHAudit sends SSH login audit records over the node's current control connection
// (see controlws.Client.ReportSSHAudit). With no map stream to control it fails at once
// with an error wrapping ErrControlUnreachable.
func (n *Node) ReportSSHAudit(ctx context.Context, a controlws.SSHAudit) (*controlws.SSHAuditAnswer, error) {
	cc, err := n.streamingConn()
	if err != nil {
		return nil, err
	}
	return cc.ReportSSHAudit(ctx, a)
}

// streamingConn is the control connection whose map stream is up.
func (n *Node) streamingConn() (*controlws.Client, error) {
	n.mu.Lock()
	cc, up := n.cc, n.fresh.streamUp && n.mapCC == n.cc
	n.mu.Unlock()
	if cc == nil || !up {
		return nil, fmt.Errorf("%w: no map stream with control", ErrControlUnreachable)
	}
	return cc, nil
}

// RecordingViewer asks control, over the node's current control connection, whether the
// owner of peer node id may view session recordings (controlws.Client.RecordingViewer).
// With no map stream to control it fails at once with an error wrapping ErrControlUnreachable.
func (n *Node) RecordingViewer(ctx context.Context, id int64) (*controlws.RecordingViewerAnswer, error) {
	n.mu.Lock()
	cc, up := n.cc, n.fresh.streamUp && n.mapCC == n.cc
	n.mu.Unlock()
	if cc == nil || !up {
		return nil, fmt.Errorf("%w: no map stream with control", ErrControlUnreachable)
	}
	return cc.RecordingViewer(ctx, controlws.RecordingViewerRequest{Node: id})
}
