// Package magicbind carries WireGuard over direct UDP paths between native nodes, with the
// DERP relay as the start and the fallback: endpoint discovery (local addresses and STUN),
// authenticated disco pings that pick the path, and a conn.Bind that sends on it.
//
// The browser cannot send UDP: nothing under wasm/ may import this package.
package magicbind
