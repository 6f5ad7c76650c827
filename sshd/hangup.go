package sshd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
)

// ErrClientGone is the cause (context.Cause) of Authorize's context when the client hung
// up, or its connection failed, while Authorize was still deciding: a held login (check
// mode) learns at once that nobody waits for its verdict any more.
var ErrClientGone = errors.New("sshd: the client hung up during authentication")

// errHandshakeTimeout is the cause of Authorize's context when the handshake ran out of
// time (2 minutes, or as AuthRequest.Extend set).
var errHandshakeTimeout = errors.New("sshd: the SSH handshake timed out")

// errServerClosed is the cause of Authorize's context when this side closed the
// connection (server closing, access revoked).
var errServerClosed = errors.New("sshd: the connection was closed by the server")

// hangupConn reports the first read error on a client connection. While Authorize decides,
// x/crypto/ssh's handshake goroutine waits in our callback, but its transport's reader
// goroutine keeps reading the connection; an EOF or reset there is the client's hang-up,
// which nothing else would notice until the callback returns.
type hangupConn struct {
	net.Conn
	once sync.Once
	gone func(cause error) // called once, with the cause for Authorize's context
}

func (h *hangupConn) Read(p []byte) (int, error) {
	n, err := h.Conn.Read(p)
	if err != nil {
		h.once.Do(func() { h.gone(readCause(err)) })
	}
	return n, err
}

// readCause classifies a read error on the client connection as a context cause.
func readCause(err error) error {
	switch {
	case errors.Is(err, net.ErrClosed):
		return errServerClosed
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errHandshakeTimeout
	}
	return fmt.Errorf("%w (%v)", ErrClientGone, err)
}
