package main

import (
	"context"
	"errors"

	"tsconnect/controlws"
	"tsconnect/node"
	"tsconnect/sshclient"
)

// Error codes the page can switch on, besides controlws's (invalid_key, expired_key,
// used_key, revoked_key, node_deleted, ...), which pass through unchanged.
const (
	CodeControlUnreachable = "control_unreachable"
	CodeRelayUnreachable   = "relay_unreachable"
	CodeHostUnreachable    = "host_unreachable"
	CodeUnknownHost        = "unknown_host"      // no peer of that name or address in the map
	CodeNoSSH              = "no_ssh"            // the peer does not run our SSH server
	CodeNoHostKey          = "no_host_key"       // the map has no host key to pin for the peer
	CodeHostKeyMismatch    = "host_key_mismatch" // the peer presented another host key
	CodeSSHFailed          = "ssh_failed"        // handshake or login refused
	CodeSessionLost        = "session_lost"      // connection ended without an exit status
	CodeSessionKilled      = "session_killed"    // the server ended the remote process with a signal (revoked, ended by an admin)
	CodeNotStarted         = "not_started"       // run() was not called
	CodeClosed             = "closed"            // the IPN or session was closed
	CodeTimeout            = "timeout"
	CodeInternal           = controlws.CodeInternal
)

// codedError is an error with the code the page sees.
type codedError struct {
	code string
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// withCode marks err with code unless it already carries one.
func withCode(code string, err error) error {
	if err == nil {
		return nil
	}
	var ce *codedError
	if errors.As(err, &ce) {
		return err
	}
	return &codedError{code, err}
}

// errorMessage is the message the page shows for err: when control and this wasm share no
// protocol version, just the sentence saying which to upgrade to what; else err's text.
func errorMessage(err error) string {
	var ctl *controlws.Error
	if errors.As(err, &ctl) && ctl.Code == controlws.CodeUnsupportedVer {
		return ctl.Message
	}
	return err.Error()
}

// errorCode classifies err for the page.
func errorCode(err error) string {
	var ce *codedError
	var ctl *controlws.Error
	switch {
	case errors.As(err, &ce):
		return ce.code
	case errors.As(err, &ctl):
		return ctl.Code
	case errors.Is(err, sshclient.ErrHostKeyMismatch):
		return CodeHostKeyMismatch
	case errors.Is(err, sshclient.ErrNoHostKeys):
		return CodeNoHostKey
	case errors.Is(err, node.ErrControlUnreachable):
		return CodeControlUnreachable
	case errors.Is(err, node.ErrRelayUnreachable):
		return CodeRelayUnreachable
	case errors.Is(err, node.ErrHostUnreachable):
		return CodeHostUnreachable
	case errors.Is(err, node.ErrUnknownHost):
		return CodeUnknownHost
	case errors.Is(err, context.DeadlineExceeded):
		return CodeTimeout
	case errors.Is(err, context.Canceled):
		return CodeClosed
	default:
		return CodeInternal
	}
}
