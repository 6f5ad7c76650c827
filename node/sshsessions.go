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
	n.mu.Lock()
	cc, up := n.cc, n.fresh.streamUp && n.mapCC == n.cc
	n.mu.Unlock()
	if cc == nil || !up {
		return nil, fmt.Errorf("%w: no map stream with control", ErrControlUnreachable)
	}
	return cc.ReportSSHSessions(ctx, r)
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
