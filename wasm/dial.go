package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"

	"tsconnect/controlws"
)

// Bounds on what the page asks of Dial.
const (
	// MaxDialHost is the longest host Dial takes: a DNS name's limit (an address is shorter).
	MaxDialHost = 253
	// MaxStreams is how many streams (Dial) one IPN has open at once.
	MaxStreams = 32
	// MaxWriteChunk is the largest write the page sends of a stream (npm/src/index.ts splits).
	MaxWriteChunk = 256 << 10
)

// Error codes of Dial.
const (
	CodeConnectionRefused = "connection_refused" // a reset: the peer's policy refuses the port, or nothing listens there
	CodeTooManyStreams    = "too_many_streams"
)

// Dial opens a TCP connection to port of host (a peer name or overlay address) through the
// overlay, from this node, and returns it as a session at once: Write (flow-controlled with
// OnWritten), CloseWrite, Ack and Close as for a terminal; OnData gets the peer's bytes
// (within OutputWindow), OnConnected the connection, OnDone its end (0 when the peer closed
// it). The peer's packet filter decides, as for any connection: a port it refuses fails at
// once with connection_refused.
func (p *IPN) Dial(host string, port int, opts SSHOptions) *SSHSession {
	return p.session(p.ctx, opts, func(s *SSHSession, o SSHOptions) (int, error) { return p.runDial(s, host, port, o) })
}

func (p *IPN) runDial(s *SSHSession, host string, port int, o SSHOptions) (int, error) {
	if host == "" || len(host) > MaxDialHost {
		return -1, withCode(controlws.CodeBadRequest, fmt.Errorf("dial: the host must be a peer name or address of 1 to %d bytes", MaxDialHost))
	}
	if port < 1 || port > 65535 {
		return -1, withCode(controlws.CodeBadRequest, errors.New("dial: the port must be an integer from 1 to 65535"))
	}
	p.mu.Lock()
	full := p.streams >= MaxStreams
	if !full {
		p.streams++
	}
	p.mu.Unlock()
	if full {
		return -1, withCode(CodeTooManyStreams, fmt.Errorf("dial: %d streams are open, the most one node has at once", MaxStreams))
	}
	defer func() {
		p.mu.Lock()
		p.streams--
		p.mu.Unlock()
	}()
	eng, err := p.running(s.ctx)
	if err != nil {
		return -1, err
	}
	peer, err := findPeer(eng.NetMap(), host)
	if err != nil {
		return -1, err
	}
	ip, err := overlayAddr(peer)
	if err != nil {
		return -1, err
	}
	addr := netip.AddrPortFrom(ip, uint16(port))
	dctx, dcancel := context.WithTimeout(s.ctx, DialTimeout)
	nc, err := eng.Dial(dctx, "tcp", addr.String())
	dcancel()
	switch {
	case err == nil:
	case s.ctx.Err() != nil:
		return -1, withCode(CodeClosed, errors.New("stream closed while connecting"))
	case errors.Is(err, syscall.ECONNREFUSED):
		return -1, withCode(CodeConnectionRefused, fmt.Errorf("%s (%s) refused port %d: its policy does not let this node connect there, or nothing listens", peer.Name, ip, port))
	case errors.Is(err, context.DeadlineExceeded):
		return -1, withCode(CodeHostUnreachable, fmt.Errorf("%s (%s) port %d: no answer in %v", peer.Name, ip, port, DialTimeout))
	default:
		return -1, withCode(CodeHostUnreachable, fmt.Errorf("host unreachable: %s (%s) port %d: %w", peer.Name, ip, port, err))
	}
	defer nc.Close()
	stop := context.AfterFunc(s.ctx, func() { nc.Close() })
	defer stop()
	if o.OnConnected != nil {
		o.OnConnected()
	}
	var closeWrite func() error
	if c, ok := nc.(interface{ CloseWrite() error }); ok {
		closeWrite = c.CloseWrite
	}
	go s.pump(nc.Write, nil, closeWrite)
	buf := make([]byte, 32<<10)
	for {
		n, err := nc.Read(buf)
		if n > 0 && o.OnData != nil {
			o.OnData(buf[:n])
		}
		switch {
		case err == nil:
		case s.ctx.Err() != nil:
			return -1, withCode(CodeClosed, errors.New("stream closed"))
		case errors.Is(err, io.EOF):
			return 0, nil
		case errors.Is(err, net.ErrClosed):
			return -1, withCode(CodeClosed, errors.New("stream closed"))
		default:
			return -1, withCode(CodeSessionLost, fmt.Errorf("stream to %s port %d: %w", peer.Name, port, err))
		}
	}
}
