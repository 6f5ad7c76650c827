//go:build !js

package node

import (
	"net/netip"

	"golang.zx2c4.com/wireguard/conn"

	"tsconnect/controlws"
	"tsconnect/derpbind"
	"tsconnect/derpws"
	"tsconnect/key"
)

// newBindLocked returns the Bind of a new engine: through Paths when set, else the relay.
func (n *Node) newBindLocked() conn.Bind {
	if n.opts.Paths != nil {
		return n.opts.Paths.Bind(n.relays, n.logf)
	}
	return derpbind.New(n.relays, n.logf)
}

// setPathPeers hands Paths the peers of a new map.
func (n *Node) setPathPeers(peers []controlws.Node) {
	if n.opts.Paths != nil {
		n.opts.Paths.SetPeers(peers)
	}
}

// startPaths reports the node's home to control, with its endpoints once Paths found them.
func (n *Node) startPaths() {
	if n.opts.Paths == nil {
		go n.reportHome()
		return
	}
	go n.opts.Paths.Watch(n.ctx, n.derpMap, n.setEndpoints)
}

// discoKey is the disco key to publish: zero without Paths.
func (n *Node) discoKey() key.Public {
	if n.opts.Paths == nil {
		return key.Public{}
	}
	return n.opts.Paths.DiscoKey()
}

// derpMap returns the latest map's DERP map, nil before any.
func (n *Node) derpMap() *derpws.Map {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nm == nil {
		return nil
	}
	return n.nm.DERPMap
}

// setEndpoints records the node's endpoints and reports them to control.
func (n *Node) setEndpoints(eps []netip.AddrPort) {
	n.mu.Lock()
	n.endpoints = eps
	n.mu.Unlock()
	n.logf("node: endpoints %v", eps)
	n.reportHome()
}
