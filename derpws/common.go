package derpws

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

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

// badFrameError is a frame that breaks the protocol: the connection that sent it is closed.
type badFrameError struct{ msg string }

func (e *badFrameError) Error() string { return e.msg }

func errShortFrame(t FrameType, n uint32) error {
	return &badFrameError{fmt.Sprintf("derpws: frame type 0x%02x of %d bytes is too short", byte(t), n)}
}

// errFrameSize reports a frame of a fixed-size type whose length is not want.
func errFrameSize(t FrameType, n uint32, want string) error {
	return &badFrameError{fmt.Sprintf("derpws: frame type 0x%02x of %d bytes, want %s", byte(t), n, want)}
}

// errBigPacket reports a packet frame carrying more than MaxPacketSize.
func errBigPacket(t FrameType, n uint32) error {
	return &badFrameError{fmt.Sprintf("derpws: frame type 0x%02x carries a packet of %d bytes, limit %d", byte(t), n, MaxPacketSize)}
}

// isBadFrame reports an error for a frame that breaks the protocol (including a length over
// maxFrameLen).
func isBadFrame(err error) bool {
	var bf *badFrameError
	return errors.As(err, &bf) || errors.Is(err, errFrameTooLong)
}

// isTimeout reports a read that ended at its deadline.
func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)
}

// isClosedErr reports errors that just mean the connection was closed on purpose.
func isClosedErr(err error) bool {
	return errors.Is(err, net.ErrClosed)
}
