package node

import (
	"context"
	"net/netip"

	"golang.zx2c4.com/wireguard/conn"

	"tsconnect/controlws"
	"tsconnect/derpbind"
	"tsconnect/derpws"
	"tsconnect/key"
)

// Paths finds direct UDP paths to peers beside the relay (magicbind.Conn on native
// agents); a node without one (the browser) sends everything through the relay, and links
// none of this: paths_js.go stands in for paths_native.go there.
type Paths interface {
	// Bind returns the conn.Bind WireGuard uses, over relay and the paths.
	Bind(relay derpbind.Relay, logf func(format string, args ...any)) conn.Bind
	// SetPeers takes the peers of each new map (their disco keys and endpoints).
	SetPeers(peers []controlws.Node)
	// DiscoKey is published in Hostinfo.DiscoKey.
	DiscoKey() key.Public
	// Watch learns the node's endpoints (Hostinfo.Endpoints) now and again until ctx ends,
	// asking the STUN servers of the DERP map dm returns, and calls found with each list
	// that differs from the one before.
	Watch(ctx context.Context, dm func() *derpws.Map, found func([]netip.AddrPort))
}
