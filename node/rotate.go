package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"tsconnect/controlws"
	"tsconnect/derpws"
	"tsconnect/engine"
	"tsconnect/key"
)

// Key rotation: Login re-authenticates the node with control and moves it to a new node
// key, keeping its machine key, and with it its node (ID, name, addresses, owner). The
// WireGuard device takes the new private key in place (its sessions are expired, so the
// next packet makes a new handshake), the relay connection is replaced by one under the new
// key, and the userspace TCP stack stays: open connections carry on once peers have the new
// key from their maps.

// LoginOptions say how Login re-authenticates.
type LoginOptions struct {
	// AuthKey re-authenticates with a key of the node's owner (for a tagged node, a key
	// with its tags); "" means an interactive sign-in.
	AuthKey string
	// OnLoginURL is called with the URL to sign in at (interactive only).
	OnLoginURL func(url string)
}

// Login re-authenticates the node and rotates its node key. It returns once control has
// the new key and the node uses it; a refusal comes back as a *controlws.Error.
func (n *Node) Login(ctx context.Context, o LoginOptions) error {
	n.mu.Lock()
	cc := n.cc
	n.mu.Unlock()
	if cc == nil || n.ctx.Err() != nil {
		return errors.New("node: not connected to control")
	}
	if o.AuthKey == "" && o.OnLoginURL == nil {
		return errors.New("node: login needs an auth key or a way to show the sign-in URL")
	}
	next := key.NewPrivate()
	// Saved before control hears of it, so a crash in between loses neither key (Start
	// settles which one control holds: settleNextKey).
	if err := n.setNextKey(next); err != nil {
		return err
	}
	req := controlws.RegisterRequest{AuthKey: o.AuthKey, NodeKey: next.Public(), Hostinfo: n.hostinfo(), Reauth: true}
	var err error
	if o.AuthKey != "" {
		_, err = cc.Register(ctx, req)
	} else {
		req.Interactive = true
		_, err = cc.RegisterInteractive(ctx, req, func(u controlws.LoginURL) {
			n.logf("node: to re-authenticate, sign in at %s", u.URL)
			o.OnLoginURL(u.URL)
		})
	}
	if err != nil {
		if serr := n.setNextKey(key.Private{}); serr != nil {
			n.logf("node: %v", serr)
		}
		return err
	}
	if err := n.useKey(next); err != nil {
		return fmt.Errorf("node: control has the new node key, but: %w", err)
	}
	n.logf("node: re-authenticated; node key rotated to %s", next.Public().ShortString())
	if n.State() == StateKeyExpired {
		n.setState(StateRunning)
	}
	return nil
}

// useKey makes k the node key: saved, the WireGuard device's, the relay connection's.
func (n *Node) useKey(k key.Private) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.id.NodeKey, n.id.Registered, n.id.NextNodeKey = k, true, key.Private{}
	err := n.id.save(n.opts.StateDir)
	if n.eng == nil {
		return err
	}
	if serr := n.eng.SetPrivateKey(k); serr != nil {
		return serr
	}
	old := n.relay
	n.relay = n.newRelayLocked(k, n.nm.DERPMap, n.home) // the engine exists: so does a map
	n.relay.SetPeerRegions(peerRegions(n.nm))
	n.relay.Start()
	n.parked = false
	n.relays.swap(n.relay)
	go old.Close() // waits for its goroutines: not under n.mu
	go n.rehandshakeWhenUp(n.relay, n.eng)
	return err
}

// rehandshakeWhenUp waits (at most rehandshakeWait) for relay, the one of a new node key,
// to reach its home, then a moment for peers to have the key from their maps, and starts a
// handshake with every peer, so that a first handshake lost in the switch costs
// WireGuard's 5 s retry to none of them.
func (n *Node) rehandshakeWhenUp(relay *derpws.Multi, eng *engine.Engine) {
	deadline := time.Now().Add(rehandshakeWait)
	for !relay.HomeUp() {
		if time.Now().After(deadline) || n.ctx.Err() != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(rehandshakeAfter)
	eng.Rehandshake()
}

// rehandshakeWait bounds the wait for the new relay connection; rehandshakeAfter is the
// pause after it for peers' maps (control pushes them within milliseconds of the register).
const (
	rehandshakeWait  = 5 * time.Second
	rehandshakeAfter = 100 * time.Millisecond
)

// parkRelayLocked, while the node's key is expired (no relay admits it, and it has no
// peers), swaps the relay client for one that is never started, so the node does not
// redial the relay every second until it re-authenticates; once the key is good again (an
// admin disabled its expiry) the client starts. Callers hold n.mu.
func (n *Node) parkRelayLocked(expired bool) {
	switch {
	case expired && !n.parked:
		old := n.relay
		n.relay = n.newRelayLocked(n.id.NodeKey, n.nm.DERPMap, n.home)
		n.relays.swap(n.relay)
		n.parked = true
		go old.Close() // waits for its goroutines: not under n.mu
		n.logf("node: relay connection closed while this node's key is expired")
	case !expired && n.parked:
		n.parked = false
		n.relay.Start()
	}
}

// newRelayLocked makes (not starts) the relay client for node key k. Callers hold n.mu.
func (n *Node) newRelayLocked(k key.Private, dm *derpws.Map, home int) *derpws.Multi {
	return derpws.NewMulti(k, dm, home, &derpws.MultiOptions{
		Logf:     n.logf,
		Resolver: n.opts.Resolver,
		OnHomeConnect: func() {
			n.rOnce.Do(func() { close(n.relayUp) })
		},
	})
}

// peerRegions maps each peer's key to its home region, as the relay client routes by.
func peerRegions(nm *controlws.NetworkMap) map[key.Public]int {
	regions := make(map[key.Public]int, len(nm.Peers))
	for _, p := range nm.Peers {
		regions[p.Key] = p.HomeDERP
	}
	return regions
}

// relaySwitch is the derpbind.Relay the engine uses: the current relay client, replaced
// when the node key rotates. A receive cut short by the replacement goes on with the new one.
type relaySwitch struct {
	mu  sync.Mutex
	cur *derpws.Multi
}

func (r *relaySwitch) current() *derpws.Multi {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

func (r *relaySwitch) swap(m *derpws.Multi) {
	r.mu.Lock()
	r.cur = m
	r.mu.Unlock()
}

// Send implements derpbind.Relay.
func (r *relaySwitch) Send(dst key.Public, pkt []byte) error { return r.current().Send(dst, pkt) }

// Recv implements derpbind.Relay.
func (r *relaySwitch) Recv() (key.Public, []byte, error) {
	for {
		m := r.current()
		src, pkt, err := m.Recv()
		if err != nil && r.current() != m {
			continue // replaced: the old client was closed under us
		}
		return src, pkt, err
	}
}

// setNextKey records (or, zero, forgets) the key a Login is moving to.
func (n *Node) setNextKey(k key.Private) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.id.NextNodeKey = k
	return n.id.save(n.opts.StateDir)
}

// settleNextKey finishes a Login cut short by a stop: control holds the old key or the
// new one, so the node registers the new one (a plain rotation, which needs no auth key
// for a node logged in) and keeps it; if control refuses, the node keeps the old key.
func (n *Node) settleNextKey(ctx context.Context, cc *controlws.Client) {
	n.mu.Lock()
	next := n.id.NextNodeKey
	n.mu.Unlock()
	if next.IsZero() || !n.id.Registered {
		return
	}
	_, err := cc.Register(ctx, controlws.RegisterRequest{NodeKey: next.Public(), Hostinfo: n.hostinfo()})
	if err != nil {
		n.logf("node: a re-authentication was cut short; keeping the node key from before it: %v", err)
		if err := n.setNextKey(key.Private{}); err != nil {
			n.logf("node: %v", err)
		}
		return
	}
	if err := n.useKey(next); err != nil {
		n.logf("node: %v", err)
	}
	n.logf("node: finished the key rotation a stop cut short: node key %s", next.Public().ShortString())
}
