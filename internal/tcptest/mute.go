package tcptest

import (
	"net"
	"sync/atomic"
)

// MutedConn swallows what is written to it once Mute is set, as a connection whose other
// end vanished without a FIN or a reset: writes still succeed, nothing arrives.
type MutedConn struct {
	net.Conn
	// Mute, once set, makes Write drop its bytes.
	Mute atomic.Bool
}

func (c *MutedConn) Write(p []byte) (int, error) {
	if c.Mute.Load() {
		return len(p), nil
	}
	return c.Conn.Write(p)
}
