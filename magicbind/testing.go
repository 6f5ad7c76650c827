package magicbind

import (
	"net"
	"net/netip"
	"sync/atomic"
)

// DroppingConn wraps a UDP socket and, while Drop is set, drops every packet sent or
// received: a direct path that dies, for tests of the fallback.
type DroppingConn struct {
	*net.UDPConn
	Drop atomic.Bool
}

// ReadFromUDPAddrPort reads the next packet not dropped.
func (d *DroppingConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		n, a, err := d.UDPConn.ReadFromUDPAddrPort(b)
		if err != nil || !d.Drop.Load() {
			return n, a, err
		}
	}
}

// WriteToUDPAddrPort sends b, or pretends to while Drop is set.
func (d *DroppingConn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	if d.Drop.Load() {
		return len(b), nil
	}
	return d.UDPConn.WriteToUDPAddrPort(b, addr)
}
