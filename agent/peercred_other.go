//go:build !linux

package agent

import (
	"errors"
	"net"
)

// peerUID is unknown off Linux, so every caller is refused (fail closed).
func peerUID(net.Conn) (uint32, error) {
	return 0, errors.New("peer credentials are not supported on this platform")
}
