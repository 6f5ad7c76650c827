//go:build js

package node

import (
	"golang.zx2c4.com/wireguard/conn"

	"tsconnect/controlws"
	"tsconnect/derpbind"
	"tsconnect/key"
)

// The browser has no UDP: Options.Paths is ignored and every packet goes through the
// relay, so none of paths_native.go is linked into the wasm.

func (n *Node) newBindLocked() conn.Bind      { return derpbind.New(n.relays, n.logf) }
func (n *Node) setPathPeers([]controlws.Node) {}
func (n *Node) startPaths()                   { go n.reportHome() }
func (n *Node) discoKey() key.Public          { return key.Public{} }
