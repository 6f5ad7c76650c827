//go:build !js

package derpws

import (
	"errors"
	"net"
	"net/netip"

	"github.com/pion/stun/v3"
	"golang.org/x/time/rate"
)

// DefaultSTUNPort is the STUN port a relay's map entry means when its STUNPort is 0.
const DefaultSTUNPort = 3478

// maxSTUNPacket bounds a STUN request read from the network; a binding request is 20 bytes
// plus a few attributes.
const maxSTUNPacket = 512

// STUNRate bounds the binding requests a relay answers per second, over all senders, so
// it cannot be made a reflector of any size; STUNBurst is the burst above it.
const (
	STUNRate  = 2000
	STUNBurst = 200
)

// ServeSTUN answers STUN binding requests on pc with the sender's address as seen here
// (XOR-MAPPED-ADDRESS), until pc is closed; it then returns nil. Anything that is not a
// binding request, longer than 512 bytes or over STUNRate is dropped unanswered.
func ServeSTUN(pc net.PacketConn, logf func(format string, args ...any)) error {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	lim := rate.NewLimiter(STUNRate, STUNBurst)
	buf := make([]byte, maxSTUNPacket+1)
	var req, res stun.Message
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		ua, ok := addr.(*net.UDPAddr)
		if !ok || n > maxSTUNPacket || !stun.IsMessage(buf[:n]) || !lim.Allow() {
			continue
		}
		req.Reset()
		if _, err := req.Write(buf[:n]); err != nil || req.Type != stun.BindingRequest {
			continue
		}
		ap := ua.AddrPort()
		res.Reset()
		err = res.Build(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
			&stun.XORMappedAddress{IP: ap.Addr().Unmap().AsSlice(), Port: int(ap.Port())}, stun.Fingerprint)
		if err != nil {
			logf("derp: stun: building answer: %v", err)
			continue
		}
		if _, err := pc.WriteTo(res.Raw, addr); err != nil && errors.Is(err, net.ErrClosed) {
			return nil
		}
	}
}

// STUNRequest returns a new binding request and its transaction ID.
func STUNRequest() (tx [stun.TransactionIDSize]byte, msg []byte, err error) {
	m, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if err != nil {
		return tx, nil, err
	}
	return m.TransactionID, m.Raw, nil
}

// ParseSTUNResponse returns the mapped address of a binding success answer to tx; ok is
// false for anything else.
func ParseSTUNResponse(b []byte, tx [stun.TransactionIDSize]byte) (netip.AddrPort, bool) {
	if len(b) > maxSTUNPacket || !stun.IsMessage(b) {
		return netip.AddrPort{}, false
	}
	var m stun.Message
	if _, err := m.Write(b); err != nil || m.Type != stun.BindingSuccess || m.TransactionID != tx {
		return netip.AddrPort{}, false
	}
	var xa stun.XORMappedAddress
	if err := xa.GetFrom(&m); err != nil {
		return netip.AddrPort{}, false
	}
	ip, ok := netip.AddrFromSlice(xa.IP)
	if !ok || xa.Port <= 0 || xa.Port > 65535 {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(xa.Port)), true
}

// IsSTUN reports whether b looks like a STUN message (its magic cookie), so a socket that
// also carries other traffic can tell it apart.
func IsSTUN(b []byte) bool { return stun.IsMessage(b) }
