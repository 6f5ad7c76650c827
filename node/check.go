package node

import (
	"context"
	"errors"
	"fmt"

	"tsconnect/controlws"
)

// SSHCheck asks control for the verdict on an SSH login a check rule holds on this node,
// over the node's current control connection (see controlws.Client.SSHCheck): onPending, if
// non-nil, gets the URL the user must visit; the final verdict follows. With no working
// connection to control it fails at once with an error wrapping ErrControlUnreachable (the
// node keeps redialling meanwhile, so a later call may succeed).
func (n *Node) SSHCheck(ctx context.Context, req controlws.SSHCheckRequest, onPending func(controlws.SSHCheckVerdict)) (*controlws.SSHCheckVerdict, error) {
	// Control knows which node a connection is only once its map stream is up: a check sent
	// on a connection redialled a moment ago would be refused as not registered.
	n.mu.Lock()
	cc, up := n.cc, n.fresh.streamUp && n.mapCC == n.cc
	n.mu.Unlock()
	if cc == nil || !up {
		return nil, fmt.Errorf("%w: no map stream with control", ErrControlUnreachable)
	}
	v, err := cc.SSHCheck(ctx, req, onPending)
	if err != nil && ctx.Err() == nil {
		var ce *controlws.Error
		if !errors.As(err, &ce) && !errors.Is(err, controlws.ErrUnsupported) {
			return nil, fmt.Errorf("%w: %w", ErrControlUnreachable, err)
		}
	}
	return v, err
}
