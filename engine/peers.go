package engine

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"tsconnect/key"
)

// SetPeers makes the WireGuard peer set exactly peers: new peers are added, peers whose
// addresses changed are updated, missing peers are removed, all live and in one
// configuration step. Unchanged peers are not touched, so their sessions and connections
// carry on. A peer's allowed IPs are exactly its AllowedIPs, and it is reached through the
// Bind at its key.
func (e *Engine) SetPeers(peers []Peer) error {
	want := make(map[key.Public][]netip.Prefix, len(peers))
	self := e.PublicKey()
	for _, p := range peers {
		if p.Key.IsZero() {
			return fmt.Errorf("engine: peer with zero key")
		}
		if p.Key == self {
			return fmt.Errorf("engine: peer %s is this node's own key", p.Key.ShortString())
		}
		if _, dup := want[p.Key]; dup {
			return fmt.Errorf("engine: peer %s listed twice", p.Key.ShortString())
		}
		ips := make([]netip.Prefix, 0, len(p.AllowedIPs))
		for _, ip := range p.AllowedIPs {
			if !ip.IsValid() {
				return fmt.Errorf("engine: peer %s: invalid allowed IP %v", p.Key.ShortString(), ip)
			}
			ips = append(ips, ip.Masked())
		}
		slices.SortFunc(ips, func(a, b netip.Prefix) int {
			if c := a.Addr().Compare(b.Addr()); c != 0 {
				return c
			}
			return a.Bits() - b.Bits()
		})
		want[p.Key] = slices.Compact(ips)
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return net.ErrClosed
	}
	var b uapiBuilder
	var added, changed, removed int
	// Removals first, so an address moving from a removed peer to a new one ends up there.
	for k := range e.peers {
		if _, ok := want[k]; !ok {
			b.line("public_key", k.String())
			b.line("remove", "true")
			removed++
		}
	}
	for k, ips := range want {
		old, ok := e.peers[k]
		switch {
		case !ok:
			b.line("public_key", k.String())
			b.line("endpoint", k.String())
			added++
		case !slices.Equal(old, ips):
			b.line("public_key", k.String())
			b.line("update_only", "true")
			changed++
		default:
			continue
		}
		b.line("replace_allowed_ips", "true")
		for _, ip := range ips {
			b.line("allowed_ip", ip.String())
		}
	}
	if b.Len() == 0 {
		return nil
	}
	e.hs.setPeers(want) // first, so a new peer's first handshake is not dropped
	if err := e.dev.IpcSet(b.String()); err != nil {
		// Part of the change may have been applied; forget what we knew so the next
		// SetPeers re-applies every peer.
		e.resyncLocked()
		return fmt.Errorf("engine: configure WireGuard peers: %w", err)
	}
	e.peers = want
	e.logf("engine: peers: %d added, %d changed, %d removed, %d total", added, changed, removed, len(want))
	return nil
}

// resyncLocked removes every peer after a failed IpcSet, so the device and e.peers agree again.
func (e *Engine) resyncLocked() {
	e.dev.RemoveAllPeers()
	clear(e.peers)
}
