package magicbind

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"tsconnect/controlws"
	"tsconnect/derpws"
)

// stunTimeout bounds one STUN query.
const stunTimeout = 2 * time.Second

// maxSTUNServers bounds the relays one Discover asks.
const maxSTUNServers = 3

func isSTUN(pkt []byte) bool { return derpws.IsSTUN(pkt) }

// Discover returns the node's endpoints: its local addresses with the socket's port (only
// the bound address when the socket is bound to one), and the address each relay of dm
// with a STUN port (up to 3) sees this socket at. At most controlws.MaxEndpoints.
func (c *Conn) Discover(ctx context.Context, dm *derpws.Map) []netip.AddrPort {
	var eps, stunEps []netip.AddrPort
	if c.boundAll {
		ifs, err := c.ifs()
		if err != nil {
			c.logf("magicbind: listing interfaces: %v", err)
		}
		eps = localEndpoints(ifs, c.port, c.v4only, controlws.MaxEndpoints)
	} else if ua, ok := c.pc.LocalAddr().(*net.UDPAddr); ok {
		eps = append(eps, netip.AddrPortFrom(ua.AddrPort().Addr().Unmap(), c.port))
	}
	for _, srv := range c.stunServers(ctx, dm) {
		if ap, ok := c.stunQuery(ctx, srv); ok {
			stunEps = append(stunEps, ap)
		}
	}
	// A call-me-maybe carries what STUN saw first: behind a NAT those are the endpoints
	// the peer can reach.
	var cmm []netip.AddrPort
	for _, ep := range append(capEndpoints(stunEps, MaxCallMeMaybe), eps...) {
		if !slices.Contains(cmm, ep) {
			cmm = append(cmm, ep)
		}
	}
	eps = capEndpoints(append(eps, stunEps...), controlws.MaxEndpoints)
	c.mu.Lock()
	c.endpoints = cmm[:min(len(cmm), MaxCallMeMaybe)]
	c.mu.Unlock()
	return eps
}

// stunServers resolves the STUN addresses of dm's relays.
func (c *Conn) stunServers(ctx context.Context, dm *derpws.Map) []netip.AddrPort {
	if dm == nil {
		return nil
	}
	var out []netip.AddrPort
	for _, r := range dm.Regions {
		for _, n := range r.Nodes {
			if len(out) >= maxSTUNServers {
				return out
			}
			if n == nil || n.STUNPort < 0 || n.STUNPort > 65535 {
				continue
			}
			port := n.STUNPort
			if port == 0 {
				port = derpws.DefaultSTUNPort
			}
			host := n.IPv4
			if host == "" {
				host = n.HostName
			}
			ip, err := netip.ParseAddr(host)
			if err != nil {
				rctx, cancel := context.WithTimeout(ctx, stunTimeout)
				ips, lerr := net.DefaultResolver.LookupNetIP(rctx, "ip4", host)
				cancel()
				if lerr != nil || len(ips) == 0 {
					c.logf("magicbind: STUN server %s: %v", net.JoinHostPort(host, strconv.Itoa(port)), lerr)
					continue
				}
				ip = ips[0]
			}
			out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(port)))
		}
	}
	return out
}

// stunQuery asks srv for this socket's address as it sees it.
func (c *Conn) stunQuery(ctx context.Context, srv netip.AddrPort) (netip.AddrPort, bool) {
	tx, req, err := derpws.STUNRequest()
	if err != nil {
		return netip.AddrPort{}, false
	}
	ch := make(chan netip.AddrPort, 1)
	c.mu.Lock()
	c.stunWait[tx] = stunWaiter{to: srv, ch: ch}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.stunWait, tx)
		c.mu.Unlock()
	}()
	if _, err := c.pc.WriteToUDPAddrPort(req, srv); err != nil {
		c.logf("magicbind: STUN to %v: %v", srv, err)
		return netip.AddrPort{}, false
	}
	t := time.NewTimer(stunTimeout)
	defer t.Stop()
	select {
	case ap := <-ch:
		return ap, true
	case <-t.C:
		c.logf("magicbind: STUN server %v did not answer within %v", srv, stunTimeout)
	case <-ctx.Done():
	case <-c.done:
	}
	return netip.AddrPort{}, false
}

// handleSTUN passes a STUN answer to the query waiting for it; anything else is dropped.
func (c *Conn) handleSTUN(pkt []byte, src netip.AddrPort) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for tx, w := range c.stunWait {
		if w.to != src {
			continue
		}
		if ap, ok := derpws.ParseSTUNResponse(pkt, tx); ok {
			select {
			case w.ch <- ap:
			default:
			}
			return
		}
	}
}

// RediscoverInterval is how often Watch looks for the endpoints again (a changed address
// or NAT mapping).
const RediscoverInterval = 30 * time.Second

// Watch runs Discover now and every RediscoverInterval until ctx ends or the Conn closes,
// calling found with each list of endpoints that differs from the one before.
func (c *Conn) Watch(ctx context.Context, dm func() *derpws.Map, found func([]netip.AddrPort)) {
	t := time.NewTicker(RediscoverInterval)
	defer t.Stop()
	var last []netip.AddrPort
	for first := true; ; first = false {
		eps := c.Discover(ctx, dm())
		if ctx.Err() != nil {
			return
		}
		if first || !slices.Equal(eps, last) {
			last = eps
			found(eps)
		}
		select {
		case <-ctx.Done():
			return
		case <-c.done:
			return
		case <-t.C:
		}
	}
}
