package node

import "errors"

// Errors a caller can tell apart with errors.Is; each wraps the underlying cause.
var (
	// ErrControlUnreachable: no connection to the control server.
	ErrControlUnreachable = errors.New("control unreachable")
	// ErrRelayUnreachable: registered, but the home DERP relay did not connect.
	ErrRelayUnreachable = errors.New("relay unreachable")
	// ErrHostUnreachable: the peer did not answer over the overlay.
	ErrHostUnreachable = errors.New("host unreachable")
	// ErrUnknownHost: no peer of that name is in the network map.
	ErrUnknownHost = errors.New("unknown host")
)
