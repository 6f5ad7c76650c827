// Package engine is the node engine shared by the agent and the browser: WireGuard over a
// conn.Bind (usually DERP) in front of a userspace TCP/IP stack, with TCP dial and listen.
package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"

	"tsconnect/filter"
	"tsconnect/key"
	"tsconnect/tunstack"
)

// Config configures an Engine.
type Config struct {
	// PrivateKey is the node key: the WireGuard (and DERP) identity. Required.
	PrivateKey key.Private
	// Bind carries WireGuard packets, e.g. derpbind.New(relay, logf). Required. The Engine
	// opens and closes it; whatever sits behind it (the relay) stays the caller's to close.
	Bind conn.Bind
	// MTU of the overlay. 0 means 1280.
	MTU int
	// Logf, if non-nil, receives log lines: the engine's own and WireGuard's errors.
	Logf func(format string, args ...any)
	// VerboseWireGuard also sends WireGuard's verbose log (handshakes, timers) to Logf.
	VerboseWireGuard bool
}

// Peer is a WireGuard peer: its node key and the overlay addresses it owns.
type Peer struct {
	Key key.Public
	// AllowedIPs are the peer's addresses (its /32 and /128): packets to them go to this
	// peer, and packets from this peer are accepted only from them.
	AllowedIPs []netip.Prefix
}

// Engine is a running node: a WireGuard device whose tunnel ends in a userspace stack.
type Engine struct {
	logf  func(format string, args ...any)
	self  key.Public
	stack *tunstack.Stack
	flt   *filter.Device
	hs    *handshakeLimiter
	dev   *device.Device

	mu     sync.Mutex
	closed bool
	peers  map[key.Public][]netip.Prefix // as last applied by SetPeers
}

// New starts an Engine with no addresses and no peers.
func New(cfg Config) (*Engine, error) {
	if cfg.PrivateKey.IsZero() {
		return nil, errors.New("engine: Config.PrivateKey is required")
	}
	if cfg.Bind == nil {
		return nil, errors.New("engine: Config.Bind is required")
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	st, err := tunstack.New(&tunstack.Options{MTU: cfg.MTU, Logf: logf})
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}

	wglog := &device.Logger{
		Verbosef: device.DiscardLogf,
		Errorf:   func(format string, args ...any) { logf("wireguard: "+format, args...) },
	}
	if cfg.VerboseWireGuard {
		wglog.Verbosef = wglog.Errorf
	}

	// The seam for the packet filter: every packet WireGuard delivers to the node passes
	// through this tun.Device's Write, and every packet the node sends through its Read. A
	// stateful filter wraps the Stack here as a tun.Device of its own.
	flt := filter.Wrap(st, &filter.Options{Logf: logf, Reject: st.Send})
	var dev tun.Device = flt

	hs := newHandshakeLimiter()
	e := &Engine{
		logf:  logf,
		self:  cfg.PrivateKey.Public(),
		stack: st,
		flt:   flt,
		hs:    hs,
		dev:   device.NewDevice(dev, &limitedBind{Bind: cfg.Bind, l: hs}, wglog),
		peers: make(map[key.Public][]netip.Prefix),
	}
	priv, _ := cfg.PrivateKey.MarshalText()
	if err := e.dev.IpcSet("private_key=" + string(priv) + "\n"); err != nil {
		e.dev.Close()
		return nil, fmt.Errorf("engine: set private key: %w", err)
	}
	if err := e.dev.Up(); err != nil {
		e.dev.Close()
		return nil, fmt.Errorf("engine: bring WireGuard up: %w", err)
	}
	return e, nil
}

// PublicKey returns the node's public key.
func (e *Engine) PublicKey() key.Public {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.self
}

// SetPrivateKey replaces the node key (a rotation). WireGuard expires the sessions made
// under the old key, so the next packet to each peer starts a handshake with the new one;
// the userspace stack and its open connections stay.
func (e *Engine) SetPrivateKey(k key.Private) error {
	if k.IsZero() {
		return errors.New("engine: zero private key")
	}
	priv, _ := k.MarshalText()
	if err := e.dev.IpcSet("private_key=" + string(priv) + "\n"); err != nil {
		return fmt.Errorf("engine: set private key: %w", err)
	}
	e.mu.Lock()
	e.self = k.Public()
	e.mu.Unlock()
	return nil
}

// Rehandshake sends every peer a handshake initiation now (WireGuard sends at most one per
// peer every 5 s). After a key rotation a peer's first handshake with the new key can be
// lost in the switch (the peer had not the new key yet, or the relay not the new
// connection); without this the session would wait for WireGuard's 5 s retry.
func (e *Engine) Rehandshake() {
	e.mu.Lock()
	keys := make([]key.Public, 0, len(e.peers))
	for k := range e.peers {
		keys = append(keys, k)
	}
	e.mu.Unlock()
	for _, k := range keys {
		if p := e.dev.LookupPeer(device.NoisePublicKey(k)); p != nil {
			p.SendHandshakeInitiation(false)
		}
	}
}

// SetAddresses sets the node's own overlay addresses (/32 and /128).
func (e *Engine) SetAddresses(addrs []netip.Prefix) error {
	if err := e.stack.SetAddresses(addrs); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	return nil
}

// Addresses returns the node's own overlay addresses.
func (e *Engine) Addresses() []netip.Prefix { return e.stack.Addresses() }

// DialContext opens a TCP connection to a peer's overlay address. network is "tcp",
// "tcp4" or "tcp6". It fails at once when no peer owns addr.
func (e *Engine) DialContext(ctx context.Context, network string, addr netip.AddrPort) (net.Conn, error) {
	if !e.hasPeerFor(addr.Addr().Unmap()) && !e.isSelf(addr.Addr().Unmap()) {
		return nil, fmt.Errorf("engine: dial %s %v: no peer has that address", network, addr)
	}
	c, err := e.stack.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	return c, nil
}

// ListenTCP listens on port of all the node's overlay addresses, IPv4 and IPv6, including
// addresses set later.
func (e *Engine) ListenTCP(port uint16) (net.Listener, error) {
	l, err := e.stack.ListenTCP(port)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	return l, nil
}

// Close stops WireGuard (closing the Bind) and the stack; open connections and listeners
// fail. Later calls return net.ErrClosed.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return net.ErrClosed
	}
	e.closed = true
	e.mu.Unlock()
	e.dev.Close() // closes the Bind and the Stack
	return nil
}

func (e *Engine) isSelf(a netip.Addr) bool {
	for _, p := range e.stack.Addresses() {
		if p.Addr() == a {
			return true
		}
	}
	return false
}

func (e *Engine) hasPeerFor(a netip.Addr) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ips := range e.peers {
		for _, p := range ips {
			if p.Contains(a) {
				return true
			}
		}
	}
	return false
}

// uapiBuilder writes WireGuard UAPI "set" lines.
type uapiBuilder struct{ strings.Builder }

func (b *uapiBuilder) line(k, v string) { fmt.Fprintf(&b.Builder, "%s=%s\n", k, v) }
