package magicbind

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"time"

	"golang.org/x/time/rate"

	"tsconnect/key"
)

// peerState is what a Conn knows of one peer's paths.
type peerState struct {
	key       key.Public
	disco     key.Public
	region    int              // home DERP region, for status
	endpoints []netip.AddrPort // from the map
	learned   []netip.AddrPort // sources of its valid pings, at most maxLearned

	best    netip.AddrPort // the direct path, invalid while on the relay
	bestRTT time.Duration
	bestAt  time.Time // last pong on best

	lastSend      time.Time // last data packet sent to it
	lastRecv      time.Time // last data packet taken from it
	lastProbe     time.Time
	lastHeartbeat time.Time
	lastRTT       time.Duration
	lastPong      time.Time
	lastPongVia   netip.AddrPort

	seen   [64]TxID // ping tx ids taken from it, a ring, against replays
	seenAt int

	// pingLim bounds the pings sent to it; unprovenLim the disco messages claiming it that
	// are opened from addresses not yet its (ratelimit.go).
	pingLim, unprovenLim *rate.Limiter
}

// active reports whether data went to or came from p within ActiveFor: only such peers
// are probed, so a map of many idle peers costs no pings.
func (p *peerState) active(now time.Time) bool {
	return now.Sub(p.lastSend) < ActiveFor || now.Sub(p.lastRecv) < ActiveFor
}

// provenLocked reports whether src is an address of p's already: a map endpoint, its
// direct path, or the source of a valid disco message of it.
func (c *Conn) provenLocked(p *peerState, src netip.AddrPort) bool {
	return p.best == src || c.byAddr[src] == p || slices.Contains(p.endpoints, src)
}

// pendingPing is a ping awaiting its pong.
type pendingPing struct {
	peer *peerState
	to   netip.AddrPort // invalid: sent through the relay
	sent time.Time
	ch   chan Pong // Ping's caller, or nil
}

// Pong is one answer to Ping.
type Pong struct {
	// Via is the peer's address that answered; invalid when the pong came through the relay.
	Via netip.AddrPort
	RTT time.Duration
}

// Path is a peer's current path, for status.
type Path struct {
	// Direct is the peer's address traffic goes to; invalid while it is relayed.
	Direct netip.AddrPort
	// Region is the peer's home DERP region, which relayed traffic goes through.
	Region int
	// RTT is the round-trip time of the last pong, zero before any; LastPong when it came.
	RTT      time.Duration
	LastPong time.Time
	// Known is false for a peer this Conn has no disco key of (it stays on the relay).
	Known bool
	// Active is whether data went to or came from the peer within ActiveFor.
	Active bool
}

// Path returns peer k's path.
func (c *Conn) Path(k key.Public) Path {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.peers[k]
	if p == nil {
		return Path{}
	}
	return Path{Direct: p.best, Region: p.region, RTT: p.lastRTT, LastPong: p.lastPong, Known: true, Active: p.active(time.Now())}
}

// Ping sends peer k one ping through the relay and one to each of its endpoints, and
// delivers their pongs on the channel as they come, for up to 5 s. It fails with
// ErrNoDiscoKey when k has no disco key in the map, net.ErrClosed after Close.
func (c *Conn) Ping(k key.Public) (<-chan Pong, error) {
	c.mu.Lock()
	p := c.peers[k]
	if c.closed {
		c.mu.Unlock()
		return nil, net.ErrClosed
	}
	if p == nil {
		c.mu.Unlock()
		return nil, ErrNoDiscoKey
	}
	targets := append([]netip.AddrPort{{}}, p.endpoints...)
	targets = append(targets, p.learned...)
	ch := make(chan Pong, len(targets))
	var out []outPacket
	for _, to := range targets {
		if pkt := c.pingLocked(p, to, ch); pkt.pkt != nil {
			out = append(out, pkt)
		}
	}
	c.mu.Unlock()
	c.sendAll(out)
	return ch, nil
}

// ErrNoDiscoKey is Ping's error for a peer whose map entry has no disco key: a browser, or
// an agent without direct paths, reached through the relay only.
var ErrNoDiscoKey = errors.New("magicbind: the peer publishes no disco key (a browser, or an agent without direct paths): it is reached through the relay only")

// outPacket is a disco packet to send once c.mu is released.
type outPacket struct {
	peer key.Public
	to   netip.AddrPort // invalid: through the relay
	pkt  []byte
}

func (c *Conn) sendAll(out []outPacket) {
	c.mu.Lock()
	b := c.b
	c.mu.Unlock()
	for _, o := range out {
		if o.to.IsValid() {
			c.pc.WriteToUDPAddrPort(o.pkt, o.to)
		} else if b != nil {
			b.relay.Send(o.peer, o.pkt)
		}
	}
}

// pingLocked records a ping to p at to and returns it sealed (nil pkt when too many
// are pending or the ping rate is used up).
func (c *Conn) pingLocked(p *peerState, to netip.AddrPort, ch chan Pong) outPacket {
	if !allowBoth(p.pingLim, c.pingLim) {
		c.counters.PingsThrottled++
		return outPacket{}
	}
	if len(c.pending) >= maxPending {
		c.expirePendingLocked(time.Now())
		if len(c.pending) >= maxPending {
			return outPacket{}
		}
	}
	tx := newTxID()
	c.pending[tx] = &pendingPing{peer: p, to: to, sent: time.Now(), ch: ch}
	return outPacket{peer: p.key, to: to, pkt: sealDisco(discoMsg{typ: msgPing, tx: tx}, c.discoPub, &c.discoPriv, p.disco)}
}

// callMeMaybeLocked returns a call-me-maybe to p through the relay with this node's
// endpoints (nil pkt before Discover found any, or past the ping rate), so that p pings
// them while this node's pings to p are on their way: both NATs open at once.
func (c *Conn) callMeMaybeLocked(p *peerState) outPacket {
	if len(c.endpoints) == 0 {
		return outPacket{}
	}
	if !allowBoth(p.pingLim, c.pingLim) {
		c.counters.PingsThrottled++
		return outPacket{}
	}
	m := discoMsg{typ: msgCallMeMaybe, tx: newTxID(), eps: c.endpoints}
	return outPacket{peer: p.key, pkt: sealDisco(m, c.discoPub, &c.discoPriv, p.disco)}
}

func (c *Conn) expirePendingLocked(now time.Time) {
	for tx, pp := range c.pending {
		if now.Sub(pp.sent) > pingTimeout {
			delete(c.pending, tx)
		}
	}
}

// handleDisco takes one disco message from the UDP address src, or (src invalid) through
// the relay from relayKey.
func (c *Conn) handleDisco(pkt []byte, src netip.AddrPort, relayKey key.Public) {
	viaUDP := src.IsValid()
	if (viaUDP && !c.limUDP.allow(src)) || (!viaUDP && !c.limRelay.allow(relayKey)) {
		c.drop()
		return
	}
	sender, err := discoSender(pkt)
	if err != nil {
		c.drop()
		return
	}
	c.mu.Lock()
	p := c.byDisco[sender]
	if p != nil && viaUDP && !c.provenLocked(p, src) && !allowBoth(p.unprovenLim, c.unprovenLim) {
		// A new address claiming p: opened only within the unproven rate, so forged
		// messages cannot cost unbounded box openings nor crowd out p's known addresses.
		c.counters.PingsThrottled++
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	if p == nil || (!viaUDP && p.key != relayKey) {
		c.drop() // unknown sender, or a relay key that is not the disco key's node
		return
	}
	m, err := openDisco(pkt, sender, &c.discoPriv)
	if err != nil {
		c.drop()
		return
	}
	now := time.Now()
	var out []outPacket
	c.mu.Lock()
	if c.byDisco[sender] != p { // the map changed meanwhile
		c.mu.Unlock()
		return
	}
	switch m.typ {
	case msgPing:
		if p.sawPing(m.tx) {
			c.counters.DiscoDropped++
			break
		}
		pong := sealDisco(discoMsg{typ: msgPong, tx: m.tx, src: src}, c.discoPub, &c.discoPriv, p.disco)
		out = append(out, outPacket{peer: p.key, to: src, pkt: pong})
		if viaUDP {
			c.learnLocked(p, src)
			if !p.best.IsValid() && p.active(now) {
				// Ping back at once: the peer's source is likely our way to it, and its
				// ping just opened its NAT for us (PeerPingRate bounds this).
				if o := c.pingLocked(p, src, nil); o.pkt != nil {
					out = append(out, o)
				}
			}
		}
	case msgCallMeMaybe:
		// Through the relay only (a UDP one could come from anyone's address), from a
		// peer with recent traffic, and while it has no direct path: ping its endpoints
		// now, as it pings ours, so both NATs open for each other.
		if viaUDP || p.sawPing(m.tx) || !p.active(now) || p.best.IsValid() {
			c.counters.DiscoDropped++
			break
		}
		p.lastProbe = now
		for _, ep := range m.eps {
			if c.v4only && !ep.Addr().Is4() {
				continue
			}
			if o := c.pingLocked(p, ep, nil); o.pkt != nil {
				out = append(out, o)
			}
		}
	case msgPong:
		pp := c.pending[m.tx]
		if pp == nil || pp.peer != p || pp.to != src {
			c.counters.DiscoDropped++ // no ping of ours, another peer's, or from elsewhere
			break
		}
		delete(c.pending, m.tx)
		rtt := now.Sub(pp.sent)
		p.lastRTT, p.lastPong, p.lastPongVia = rtt, now, src
		if viaUDP {
			c.learnLocked(p, src)
			switch {
			case src == p.best:
				p.bestAt, p.bestRTT = now, rtt
			case !p.best.IsValid() || rtt*4 < p.bestRTT*3:
				if !p.best.IsValid() {
					c.logf("magicbind: peer %s: direct via %v (%v), was relayed", p.key.ShortString(), src, rtt.Round(time.Microsecond))
				}
				p.best, p.bestRTT, p.bestAt = src, rtt, now
			}
		}
		if pp.ch != nil {
			select {
			case pp.ch <- Pong{Via: src, RTT: rtt}:
			default:
			}
		}
	}
	c.mu.Unlock()
	c.sendAll(out)
}

func (c *Conn) drop() {
	c.mu.Lock()
	c.counters.DiscoDropped++
	c.mu.Unlock()
}

// sawPing records tx and reports whether it was already taken (a replay).
func (p *peerState) sawPing(tx TxID) bool {
	for _, t := range p.seen {
		if t == tx {
			return true
		}
	}
	p.seen[p.seenAt] = tx
	p.seenAt = (p.seenAt + 1) % len(p.seen)
	return false
}

// learnLocked notes that src is p's (it sent a valid disco message from there), so data
// from src is taken as p's.
func (c *Conn) learnLocked(p *peerState, src netip.AddrPort) {
	if q := c.byAddr[src]; q == p {
		return
	} else if q != nil && q.best == src {
		return // another peer's live path keeps it
	}
	for _, a := range p.learned {
		if a == src {
			c.byAddr[src] = p
			return
		}
	}
	if len(p.learned) >= maxLearned {
		old := p.learned[0]
		p.learned = p.learned[1:]
		if c.byAddr[old] == p && old != p.best {
			delete(c.byAddr, old)
		}
	}
	p.learned = append(p.learned, src)
	c.byAddr[src] = p
}

// loop heartbeats direct paths, falls back to the relay when one stops answering, and
// probes the endpoints of active peers on the relay.
func (c *Conn) loop() {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case now := <-t.C:
			c.sendAll(c.step(now))
		}
	}
}

// step is one tick of loop; it returns the pings to send.
func (c *Conn) step(now time.Time) []outPacket {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expirePendingLocked(now)
	var out []outPacket
	add := func(o outPacket) {
		if o.pkt != nil {
			out = append(out, o)
		}
	}
	for _, p := range c.peers {
		active := p.active(now)
		if p.best.IsValid() && now.Sub(p.bestAt) > DirectTimeout {
			if active {
				c.logf("magicbind: peer %s: direct path %v stopped answering, back to the relay", p.key.ShortString(), p.best)
			}
			p.best = netip.AddrPort{}
		}
		if !active {
			continue
		}
		if p.best.IsValid() {
			if now.Sub(p.lastHeartbeat) >= HeartbeatInterval {
				p.lastHeartbeat = now
				add(c.pingLocked(p, p.best, nil))
			}
			continue
		}
		if now.Sub(p.lastProbe) >= ProbeInterval {
			p.lastProbe = now
			// Learned sources first: within the ping rate they are the likeliest paths.
			for _, ep := range p.learned {
				add(c.pingLocked(p, ep, nil))
			}
			for _, ep := range p.endpoints {
				add(c.pingLocked(p, ep, nil))
			}
			add(c.callMeMaybeLocked(p))
		}
	}
	return out
}
