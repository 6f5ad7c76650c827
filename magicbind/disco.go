package magicbind

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/crypto/nacl/box"

	"tsconnect/key"
)

// A disco message is a ping or a pong, sealed with NaCl box from the sender's disco key to
// the receiver's (docs/protocols.md, "Disco"):
//
//	magic "TSCdsc" (6) | sender disco public key (32) | nonce (24) | box(payload)
//
// payload: type (1: ping, 2: pong, 3: call me maybe) | version 0 (1) | tx id (12) | body
//
//	ping body: none
//	pong body: the ping's source address as the answerer saw it: IPv6 or IPv4-mapped (16) | port (2, big endian); all zero over the relay
//	call-me-maybe body: 1 to 8 of the sender's endpoints, each as a pong's address; through the relay only
const (
	discoMagic = "TSCdsc"
	// discoHeaderLen is magic, sender key and nonce.
	discoHeaderLen = len(discoMagic) + 32 + 24
	// MaxDiscoLen bounds a disco packet; anything longer is dropped unread.
	MaxDiscoLen = 256

	msgPing        byte = 1
	msgPong        byte = 2
	msgCallMeMaybe byte = 3

	txLen       = 12
	pingBodyLen = 0
	pongBodyLen = 18
	// MaxCallMeMaybe bounds the endpoints of one call-me-maybe (the message stays under
	// MaxDiscoLen); a sender with more sends its first ones.
	MaxCallMeMaybe = 8
)

// TxID names one ping; its pong carries it back.
type TxID [txLen]byte

// discoMsg is an opened disco message.
type discoMsg struct {
	typ byte
	tx  TxID
	src netip.AddrPort   // pong; invalid over the relay
	eps []netip.AddrPort // call me maybe
}

// isDisco reports whether pkt is a disco message (WireGuard packets begin with a message
// type of 1 to 4 and three zero bytes, never with the magic).
func isDisco(pkt []byte) bool {
	return len(pkt) >= len(discoMagic) && string(pkt[:len(discoMagic)]) == discoMagic
}

// sealDisco returns m sealed from priv (whose public key is pub) to peer.
func sealDisco(m discoMsg, pub key.Public, priv *[32]byte, peer key.Public) []byte {
	pl := make([]byte, 0, 2+txLen+pongBodyLen*MaxCallMeMaybe)
	pl = append(pl, m.typ, 0)
	pl = append(pl, m.tx[:]...)
	switch m.typ {
	case msgPong:
		pl = appendAddrPort(pl, m.src)
	case msgCallMeMaybe:
		for _, ep := range m.eps[:min(len(m.eps), MaxCallMeMaybe)] {
			pl = appendAddrPort(pl, ep)
		}
	}
	var nonce [24]byte
	rand.Read(nonce[:])
	out := make([]byte, 0, discoHeaderLen+len(pl)+box.Overhead)
	out = append(out, discoMagic...)
	out = append(out, pub[:]...)
	out = append(out, nonce[:]...)
	peerArr := [32]byte(peer)
	return box.Seal(out, pl, &nonce, &peerArr, priv)
}

// appendAddrPort appends ap as IPv6 or IPv4-mapped (16) and port (2, big endian), all
// zero for an invalid one.
func appendAddrPort(b []byte, ap netip.AddrPort) []byte {
	var a [16]byte
	if ap.IsValid() {
		a = ap.Addr().As16()
	}
	b = append(b, a[:]...)
	return binary.BigEndian.AppendUint16(b, ap.Port())
}

// parseAddrPort is appendAddrPort's inverse on 18 bytes; all zero gives an invalid one.
func parseAddrPort(b []byte) netip.AddrPort {
	a := netip.AddrFrom16([16]byte(b[:16])).Unmap()
	if port := binary.BigEndian.Uint16(b[16:]); port != 0 || !a.IsUnspecified() {
		return netip.AddrPortFrom(a, port)
	}
	return netip.AddrPort{}
}

// discoSender returns the sender's disco key of a disco packet, before it is opened.
func discoSender(pkt []byte) (key.Public, error) {
	if len(pkt) > MaxDiscoLen {
		return key.Public{}, fmt.Errorf("disco: %d bytes, over the limit of %d", len(pkt), MaxDiscoLen)
	}
	if len(pkt) < discoHeaderLen+box.Overhead+2+txLen {
		return key.Public{}, errors.New("disco: too short")
	}
	return key.Public(pkt[len(discoMagic) : len(discoMagic)+32]), nil
}

// openDisco opens a disco packet from sender (discoSender's answer) with priv. It fails on
// a wrong key, a changed byte, an unknown type or version, or a body of the wrong length.
func openDisco(pkt []byte, sender key.Public, priv *[32]byte) (discoMsg, error) {
	var m discoMsg
	var nonce [24]byte
	copy(nonce[:], pkt[len(discoMagic)+32:discoHeaderLen])
	senderArr := [32]byte(sender)
	pl, ok := box.Open(nil, pkt[discoHeaderLen:], &nonce, &senderArr, priv)
	if !ok {
		return m, errors.New("disco: does not open with the sender's key")
	}
	if len(pl) < 2+txLen {
		return m, errors.New("disco: payload too short")
	}
	if pl[1] != 0 {
		return m, fmt.Errorf("disco: version %d, this node speaks 0", pl[1])
	}
	m.typ = pl[0]
	copy(m.tx[:], pl[2:2+txLen])
	body := pl[2+txLen:]
	switch m.typ {
	case msgPing:
		if len(body) != pingBodyLen {
			return m, fmt.Errorf("disco: ping body of %d bytes, want %d", len(body), pingBodyLen)
		}
	case msgPong:
		if len(body) != pongBodyLen {
			return m, fmt.Errorf("disco: pong body of %d bytes, want %d", len(body), pongBodyLen)
		}
		m.src = parseAddrPort(body)
	case msgCallMeMaybe:
		if len(body) == 0 || len(body)%pongBodyLen != 0 || len(body)/pongBodyLen > MaxCallMeMaybe {
			return m, fmt.Errorf("disco: call-me-maybe body of %d bytes, want 1 to %d endpoints of %d", len(body), MaxCallMeMaybe, pongBodyLen)
		}
		for i := 0; i < len(body); i += pongBodyLen {
			if ep := parseAddrPort(body[i : i+pongBodyLen]); usableEndpoint(ep) {
				m.eps = append(m.eps, ep)
			}
		}
	default:
		return m, fmt.Errorf("disco: unknown message type %d", m.typ)
	}
	return m, nil
}

// usableEndpoint reports whether ep may be pinged: a unicast address and a port.
func usableEndpoint(ep netip.AddrPort) bool {
	a := ep.Addr()
	return ep.IsValid() && ep.Port() != 0 && !a.IsUnspecified() && !a.IsMulticast() && a.Zone() == ""
}

// newTxID returns a random tx id.
func newTxID() TxID {
	var t TxID
	rand.Read(t[:])
	return t
}
