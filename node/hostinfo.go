package node

import "context"

// SetSSH changes whether the node reports that it serves SSH, with hostKeys (authorized_keys
// form), and tells control at once when connected; otherwise the next connection to control
// carries it. The map then shows the capability to every peer.
func (n *Node) SetSSH(ctx context.Context, on bool, hostKeys []string) error {
	n.mu.Lock()
	n.opts.SSH, n.opts.SSHHostKeys = on, hostKeys
	cc := n.cc
	n.mu.Unlock()
	if cc == nil {
		return nil
	}
	return cc.Update(ctx, n.hostinfo())
}
