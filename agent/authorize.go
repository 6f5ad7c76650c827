package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"tsconnect/controlws"
	"tsconnect/sshd"
)

// authorize admits a peer that is in the network map, as the agent's own user.
// (Policy-based decisions replace this with the policy issue.)
func (a *Agent) authorize(ctx context.Context, remote netip.AddrPort, user string) (*sshd.Login, error) {
	nm := a.node.NetMap()
	if nm == nil {
		return nil, errors.New("tsconnect: this node has no network map yet")
	}
	peer, ok := nm.PeerByAddr(remote.Addr())
	if !ok {
		return nil, fmt.Errorf("tsconnect: %s is not a node of this network", remote.Addr())
	}
	if user != a.self.Username {
		return nil, fmt.Errorf("tsconnect: this agent runs as %q and can log in only as that user, not %q", a.self.Username, user)
	}
	return &sshd.Login{LocalUser: a.self.Username, Source: describePeer(nm, peer), Rule: "peer in network map"}, nil
}

func describePeer(nm *controlws.NetworkMap, p controlws.Node) string {
	owner := "tagged"
	if u, ok := nm.UserByID(p.User); ok {
		owner = u.LoginName
	}
	addr := ""
	if len(p.Addresses) > 0 {
		addr = p.Addresses[0].Addr().String()
	}
	return fmt.Sprintf("%s on %s (%s)", owner, p.Name, addr)
}

// onNetMap ends SSH sessions whose source node has left the map.
func (a *Agent) onNetMap(nm *controlws.NetworkMap) {
	a.mu.Lock()
	srv := a.sshSrv
	a.mu.Unlock()
	if srv == nil {
		return
	}
	srv.Revoke(func(remote netip.AddrPort, _ *sshd.Login) bool {
		_, ok := nm.PeerByAddr(remote.Addr())
		return ok
	}, "Access revoked.")
}
