package derpbind

import (
	"net/netip"

	"golang.zx2c4.com/wireguard/conn"

	"tsconnect/key"
)

// Endpoint is a peer reached through the relay, named by its public key. It has no IP
// address: DstIP and SrcIP are the zero netip.Addr.
type Endpoint struct {
	key key.Public
}

var _ conn.Endpoint = (*Endpoint)(nil)

// NewEndpoint returns the endpoint for peer k.
func NewEndpoint(k key.Public) *Endpoint { return &Endpoint{key: k} }

// Key returns the peer's public key.
func (e *Endpoint) Key() key.Public { return e.key }

// ClearSrc does nothing: a relay endpoint has no source address to forget.
func (e *Endpoint) ClearSrc() {}

// SrcToString returns "": there is no local address.
func (e *Endpoint) SrcToString() string { return "" }

// DstToString returns the peer key as 64 hex digits, the form ParseEndpoint takes.
func (e *Endpoint) DstToString() string { return e.key.String() }

// DstToBytes returns the 32 key bytes; WireGuard mixes them into its cookie MAC.
func (e *Endpoint) DstToBytes() []byte { return e.key[:] }

// DstIP returns the zero Addr: the peer is reached by key, not by address.
func (e *Endpoint) DstIP() netip.Addr { return netip.Addr{} }

// SrcIP returns the zero Addr.
func (e *Endpoint) SrcIP() netip.Addr { return netip.Addr{} }
