//go:build !js

package derpws

import (
	"crypto/subtle"
	"fmt"
	"io"
	"net"
	"net/netip"

	"tsconnect/key"
)

// presence is one change of a relay's client list, for the mesh peers watching it.
type presence struct {
	k       key.Public
	addr    netip.AddrPort // the client's address, in PeerPresent
	present bool           // PeerPresent, else PeerGone
}

// meshKeyMatches reports whether k is the region's mesh key, in constant time.
func (s *Server) meshKeyMatches(k string) bool {
	return s.meshKey != "" && subtle.ConstantTimeCompare([]byte(k), []byte(s.meshKey)) == 1
}

// route finds where packets to k go: its local connection, else the mesh client of the peer
// relay it is connected to, else neither.
func (s *Server) route(k key.Public) (*sclient, *Client) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c := s.clients[k]; c != nil {
		return c, nil
	}
	return nil, s.fwd[k]
}

// broadcastLocked tells every watching mesh peer that c connected or left. s.mu is held, so
// the order of changes matches the order of the client table.
func (s *Server) broadcastLocked(c *sclient, present bool) {
	if len(s.watchers) == 0 {
		return
	}
	p := presence{k: c.key, present: present}
	if present {
		p.addr = addrPort(c.nc.RemoteAddr())
	}
	for w := range s.watchers {
		w.notePresence(p)
	}
}

func addrPort(a net.Addr) netip.AddrPort {
	if a == nil {
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// notePresence queues a change for c's writer; the list is not bounded by a drop policy
// because a lost PeerGone or PeerPresent would misroute packets until the next reconnect.
func (c *sclient) notePresence(p presence) {
	c.presMu.Lock()
	c.pres = append(c.pres, p)
	c.presMu.Unlock()
	select {
	case c.presc <- struct{}{}:
	default:
	}
}

// writePresence writes the queued changes as PeerPresent and PeerGone frames.
func (c *sclient) writePresence() error {
	c.presMu.Lock()
	list := c.pres
	c.pres = nil
	c.presMu.Unlock()
	for _, p := range list {
		if !p.present {
			if err := writePeerGone(c.bw, &p.k, PeerGoneDisconnected); err != nil {
				return err
			}
			continue
		}
		// key, then the 16-byte IP and 2-byte port of the client as the relay sees it.
		var tail [18]byte
		ip := p.addr.Addr().As16()
		copy(tail[:16], ip[:])
		tail[16], tail[17] = byte(p.addr.Port()>>8), byte(p.addr.Port())
		if err := writeFrame(c.bw, FramePeerPresent, p.k[:], tail[:]); err != nil {
			return err
		}
	}
	return nil
}

// meshFrame handles the frames only mesh peers may send; from anyone else they end the connection.
func (c *sclient) meshFrame(t FrameType, n uint32) error {
	s := c.s
	if !c.canMesh {
		s.m.meshRefused.Add(1)
		return fmt.Errorf("derpws: %s sent a mesh frame (type 0x%02x) without the mesh key; closing", c.key.ShortString(), byte(t))
	}
	switch t {
	case FrameWatchConns:
		if n != 0 {
			return errFrameSize(t, n, "0")
		}
		s.mu.Lock()
		if _, ok := s.watchers[c]; !ok {
			s.watchers[c] = struct{}{}
			for _, o := range s.clients {
				if !o.canMesh {
					c.notePresence(presence{k: o.key, addr: addrPort(o.nc.RemoteAddr()), present: true})
				}
			}
		}
		s.mu.Unlock()
	case FrameClosePeer:
		if n != KeyLen {
			return errFrameSize(t, n, fmt.Sprint(KeyLen))
		}
		k, err := readKey(c.br)
		if err != nil {
			return err
		}
		s.ClosePeer(k)
	case FrameForwardPacket:
		if n < 2*KeyLen {
			return errShortFrame(t, n)
		}
		if n-2*KeyLen > MaxPacketSize {
			return errBigPacket(t, n-2*KeyLen)
		}
		src, err := readKey(c.br)
		if err != nil {
			return err
		}
		dstKey, err := readKey(c.br)
		if err != nil {
			return err
		}
		pb := getBuf(int(n - 2*KeyLen))
		if _, err := io.ReadFull(c.br, pb.b); err != nil {
			putBuf(pb)
			return unexpectedEOF(err)
		}
		s.m.forwardedIn.Add(1)
		// Only to a local client: a packet never crosses more than one mesh hop.
		dst := s.lookup(dstKey)
		if dst == nil {
			s.m.dropUnknownForward.Add(1)
			putBuf(pb)
			return nil
		}
		dst.enqueue(packet{peer: src, buf: pb})
	}
	return nil
}
