package derpws

import (
	"errors"
	"fmt"
	"net"

	"tsconnect/key"
)

// Subprotocol is the WebSocket subprotocol of DERP.
const Subprotocol = "derp"

// ctrlQueueDepth is the per-connection queue of control frames (PeerGone, Pong); when full,
// new ones are dropped.
const ctrlQueueDepth = 16

// ctrlFrame is a control frame queued for a connection's writer.
type ctrlFrame struct {
	t       FrameType
	k       key.Public // PeerGone
	reason  byte       // PeerGone
	ping    [8]byte    // Pong
	payload []byte     // other types
}

func errShortFrame(t FrameType, n uint32) error {
	return fmt.Errorf("derpws: frame type 0x%02x of %d bytes is too short", byte(t), n)
}

// isClosedErr reports errors that just mean the connection was closed on purpose.
func isClosedErr(err error) bool {
	return errors.Is(err, net.ErrClosed)
}
