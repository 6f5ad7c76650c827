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
// payload: type (1: ping, 2: pong) | version 0 (1) | tx id (12) | body
//
//	ping body: none
//	pong body: the ping's source address as the answerer saw it: IPv6 or IPv4-mapped (16) | port (2, big endian); all zero over the relay
const (
	discoMagic = "TSCdsc"
	// discoHeaderLen is magic, sender key and nonce.
	discoHeaderLen = len(discoMagic) + 32 + 24
	// MaxDiscoLen bounds a disco packet; anything longer is dropped unread.
	MaxDiscoLen = 256

	msgPing byte = 1
	msgPong byte = 2

	txLen       = 12
	pingBodyLen = 0
	pongBodyLen = 18
)

// TxID names one ping; its pong carries it back.
type TxID [txLen]byte

// discoMsg is an opened disco message.
type discoMsg struct {
	typ byte
	tx  TxID
	src netip.AddrPort // pong; invalid over the relay
}

// isDisco reports whether pkt is a disco message (WireGuard packets begin with a message
// type of 1 to 4 and three zero bytes, never with the magic).
func isDisco(pkt []byte) bool {
	return len(pkt) >= len(discoMagic) && string(pkt[:len(discoMagic)]) == discoMagic
}

// sealDisco returns m sealed from priv (whose public key is pub) to peer.
func sealDisco(m discoMsg, pub key.Public, priv *[32]byte, peer key.Public) []byte {
	pl := make([]byte, 0, 2+txLen+pongBodyLen)
	pl = append(pl, m.typ, 0)
	pl = append(pl, m.tx[:]...)
	switch m.typ {
	case msgPong:
		var a [16]byte
		if m.src.IsValid() {
			a = m.src.Addr().As16()
		}
		pl = append(pl, a[:]...)
		pl = binary.BigEndian.AppendUint16(pl, m.src.Port())
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
		a := netip.AddrFrom16([16]byte(body[:16])).Unmap()
		if port := binary.BigEndian.Uint16(body[16:]); port != 0 || !a.IsUnspecified() {
			m.src = netip.AddrPortFrom(a, port)
		}
	default:
		return m, fmt.Errorf("disco: unknown message type %d", m.typ)
	}
	return m, nil
}

// newTxID returns a random tx id.
func newTxID() TxID {
	var t TxID
	rand.Read(t[:])
	return t
}
