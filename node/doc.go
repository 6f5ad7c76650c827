// Package node is one member of the overlay network: it registers with control, follows
// the network map, relays WireGuard through DERP and dials or listens on overlay addresses.
//
// The native agent and the browser's wasm module both run a Node; only what they do with
// its connections differs (the agent serves SSH, the browser dials it).
package node
