package derpws

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"time"

	ibackoff "tsconnect/internal/backoff"
	"tsconnect/key"
)

// Timing of a client.
const (
	dialTimeout        = 10 * time.Second
	clientWriteTimeout = 10 * time.Second
	// idleTimeout: a connection that brought no frame for this long (the relay sends KeepAlive
	// at least every 60 s) is taken for dead and replaced.
	idleTimeout = 75 * time.Second
	// staleAfter: packets queued while disconnected that are older than this are dropped
	// (the rest go out on the next connection: a transport's latest retransmission arrives as
	// soon as the relay is back instead of one retransmission timeout later).
	staleAfter = 3 * time.Second
	// restartRetry is the retry interval while a Restarting frame's window lasts.
	restartRetry = 250 * time.Millisecond
)

// restartInfo is what a Restarting frame asked for.
type restartInfo struct {
	reconnectIn, tryFor time.Duration
}

// run keeps a connection to the relay until Close (see backoff for the delays between tries).
func (c *Client) run() {
	defer close(c.runc)
	var bo backoff
	var fastUntil time.Time // end of a Restarting window
	var delay time.Duration
	downSince := time.Now()
	for {
		if !c.wait(delay, downSince) {
			return
		}
		nc, br, err := c.connect()
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			c.logf("derpws: connecting to %s: %v", c.url, err)
			c.health("cannot reach the relay: " + err.Error())
			delay = bo.next()
			if time.Now().Before(fastUntil) {
				delay = ibackoff.Jitter(restartRetry)
			}
			continue
		}
		up := time.Now()
		c.up.Store(true)
		c.connects.Add(1)
		c.logf("derpws: connected to %s", c.url)
		c.health("")
		if f := c.opts.OnConnect; f != nil {
			c.hook(f)
		}
		restart := c.serve(nc, br)
		c.up.Store(false)
		downSince = time.Now()
		bo.connected(downSince.Sub(up))
		if c.watcher != nil {
			c.watcher.reset() // the peer's clients are unknown until the next WatchConns
		}
		if c.ctx.Err() != nil {
			return
		}
		if restart != nil {
			c.logf("derpws: relay restarting; reconnecting in %v", restart.reconnectIn)
			delay = restart.reconnectIn + rand.N(restart.reconnectIn/4+time.Millisecond)
			fastUntil = time.Now().Add(delay + restart.tryFor)
			bo.tries = max(bo.tries, 1) // the relay said when: no extra immediate try
		} else {
			c.logf("derpws: connection to %s lost; reconnecting", c.url)
			delay = bo.next()
		}
	}
}

// wait sleeps d while disconnected, dropping queued packets once they are stale. It returns
// false at Close.
func (c *Client) wait(d time.Duration, downSince time.Time) bool {
	end := time.Now().Add(d)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		if time.Since(downSince) >= staleAfter {
			c.dropStale(downSince)
		}
		left := time.Until(end)
		if left <= 0 {
			return c.ctx.Err() == nil
		}
		t.Reset(min(left, staleAfter))
		select {
		case <-t.C:
		case <-c.ctx.Done():
			return false
		}
	}
}

// dropStale drops the queued packets older than staleAfter, counting drops; one queued while
// connected counts as queued at downSince. The others go round the queue once, keeping their order.
func (c *Client) dropStale(downSince time.Time) {
	cutoff := time.Now().Add(-staleAfter).UnixNano()
	since := downSince.UnixNano()
	for range len(c.sendq) {
		var p packet
		select {
		case p = <-c.sendq:
		default:
			return
		}
		at := p.queued
		if at == 0 {
			at = since
		}
		if at >= cutoff {
			c.enqueue(p)
			continue
		}
		c.sendDrops.Add(1)
		putBuf(p.buf)
	}
}

// connect dials the relay and runs the handshake.
func (c *Client) connect() (net.Conn, *bufio.Reader, error) {
	ctx, cancel := context.WithTimeout(c.ctx, dialTimeout)
	defer cancel()
	nc, br, err := c.dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	if c.ctx.Err() != nil {
		c.mu.Unlock()
		nc.Close()
		return nil, nil, net.ErrClosed
	}
	c.nc = nc
	c.mu.Unlock()
	if err := c.handshake(nc, br); err != nil {
		c.dropConn(nc)
		return nil, nil, err
	}
	return nc, br, nil
}

// dropConn closes nc and forgets it.
func (c *Client) dropConn(nc net.Conn) {
	nc.Close()
	c.mu.Lock()
	if c.nc == nc {
		c.nc = nil
	}
	c.mu.Unlock()
}

// handshake reads ServerKey, sends ClientInfo and opens ServerInfo.
func (c *Client) handshake(nc net.Conn, br *bufio.Reader) error {
	nc.SetDeadline(time.Now().Add(dialTimeout))
	defer nc.SetDeadline(time.Time{})
	t, n, err := readFrameHeader(br)
	if err != nil {
		return fmt.Errorf("reading ServerKey: %w", err)
	}
	if t != FrameServerKey {
		return fmt.Errorf("derpws: first frame from the relay is type 0x%02x, not ServerKey", byte(t))
	}
	b, err := readSmallPayload(br, n, nil)
	if err != nil {
		return err
	}
	serverPub, err := parseServerKey(b)
	if err != nil {
		return err
	}
	ci, err := clientInfoPayload(c.priv, serverPub, &ClientInfo{Version: ProtocolVersion, CanAckPings: true, MeshKey: c.opts.MeshKey})
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(nc, 256)
	if err := writeFrame(bw, FrameClientInfo, ci); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	t, n, err = readFrameHeader(br)
	if err != nil {
		return fmt.Errorf("reading ServerInfo: %w", err)
	}
	b, err = readSmallPayload(br, n, nil)
	if err != nil {
		return err
	}
	switch t {
	case FrameServerInfo:
		_, err = parseServerInfo(b, c.priv, serverPub)
		return err
	case FrameHealth:
		return fmt.Errorf("derpws: relay refused the connection: %q", b)
	}
	return fmt.Errorf("derpws: relay sent frame type 0x%02x instead of ServerInfo", byte(t))
}

// clientConn is one live connection of a Client.
type clientConn struct {
	c       *Client
	nc      net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	ctrlq   chan ctrlFrame
	rdone   chan struct{} // closed when the reader has ended
	frames  atomic.Uint64 // frames read, for the idle check
	restart *restartInfo  // set by the reader before rdone closes
}

// serve runs a connection until it fails or Close, and returns a Restarting request if the relay sent one.
func (c *Client) serve(nc net.Conn, br *bufio.Reader) *restartInfo {
	cc := &clientConn{
		c:     c,
		nc:    nc,
		br:    br,
		bw:    bufio.NewWriterSize(deadlineWriter{nc, clientWriteTimeout}, writeBufSize),
		ctrlq: make(chan ctrlFrame, ctrlQueueDepth),
		rdone: make(chan struct{}),
	}
	go cc.readLoop()
	if err := cc.writeLoop(); err != nil && c.ctx.Err() == nil && !isClosedErr(err) {
		c.logf("derpws: writing to the relay: %v", err)
	}
	c.dropConn(nc)
	<-cc.rdone
	return cc.restart
}

// readLoop reads frames from the relay until the connection ends.
func (cc *clientConn) readLoop() {
	defer close(cc.rdone)
	err := cc.read()
	cc.nc.Close()
	if err != nil && cc.c.ctx.Err() == nil && !isClosedErr(err) && err != io.EOF {
		cc.c.logf("derpws: reading from the relay: %v", err)
	}
}

func (cc *clientConn) read() error {
	c := cc.c
	var scratch [256]byte
	for {
		t, n, err := readFrameHeader(cc.br)
		if err != nil {
			return err
		}
		cc.frames.Add(1)
		switch t {
		case FrameRecvPacket:
			if n < KeyLen {
				return errShortFrame(t, n)
			}
			src, err := readKey(cc.br)
			if err != nil {
				return err
			}
			pkt := make([]byte, n-KeyLen)
			if _, err := io.ReadFull(cc.br, pkt); err != nil {
				return unexpectedEOF(err)
			}
			c.packetsRecv.Add(1)
			select {
			case c.recvq <- inPacket{src, pkt}:
			default:
				c.recvDrops.Add(1)
			}
		case FramePeerGone:
			b, err := readSmallPayload(cc.br, n, scratch[:])
			if err != nil {
				return err
			}
			if len(b) < KeyLen {
				return errShortFrame(t, n)
			}
			peer, reason := key.Public(b[:KeyLen]), PeerGoneDisconnected
			if len(b) > KeyLen {
				reason = b[KeyLen]
			}
			if c.watcher != nil {
				c.watcher.gone(peer)
			} else if f := c.opts.OnPeerGone; f != nil {
				c.hook(func() { f(peer, reason) })
			}
		case FramePeerPresent:
			b, err := readSmallPayload(cc.br, n, scratch[:])
			if err != nil {
				return err
			}
			if len(b) < KeyLen {
				return errShortFrame(t, n)
			}
			if c.watcher != nil {
				c.watcher.present(key.Public(b[:KeyLen]))
			}
		case FramePing:
			b, err := readSmallPayload(cc.br, n, scratch[:])
			if err != nil {
				return err
			}
			if len(b) < 8 {
				return errShortFrame(t, n)
			}
			f := ctrlFrame{t: FramePong}
			copy(f.ping[:], b)
			select {
			case cc.ctrlq <- f:
			default:
			}
		case FrameHealth:
			b, err := readSmallPayload(cc.br, n, scratch[:])
			if err != nil {
				return err
			}
			c.health(string(b))
		case FrameRestarting:
			b, err := readSmallPayload(cc.br, n, scratch[:])
			if err != nil {
				return err
			}
			if len(b) >= 8 {
				cc.restart = &restartInfo{
					reconnectIn: time.Duration(binary.BigEndian.Uint32(b)) * time.Millisecond,
					tryFor:      time.Duration(binary.BigEndian.Uint32(b[4:])) * time.Millisecond,
				}
			}
		default:
			// KeepAlive, Pong and types from the future.
			if err := discard(cc.br, n); err != nil {
				return err
			}
		}
	}
}

// writeLoop announces this relay as home, then writes queued packets and control frames,
// flushing when the queues run dry. It returns when the connection fails, the reader ends or at Close.
func (cc *clientConn) writeLoop() error {
	c := cc.c
	if c.watcher != nil {
		if err := writeFrameHeader(cc.bw, FrameWatchConns, 0); err != nil {
			return err
		}
	} else if err := cc.writePreferred(); err != nil {
		return err
	}
	idle := time.NewTicker(idleTimeout)
	defer idle.Stop()
	lastFrames := ^uint64(0)
	for {
		var err error
		select {
		case p := <-c.sendq:
			err = cc.writePacket(p)
		case f := <-cc.ctrlq:
			err = writeFrame(cc.bw, f.t, f.ping[:])
		default:
			if cc.bw.Buffered() > 0 {
				err = cc.bw.Flush()
				break
			}
			select {
			case p := <-c.sendq:
				err = cc.writePacket(p)
			case f := <-cc.ctrlq:
				err = writeFrame(cc.bw, f.t, f.ping[:])
			case <-c.prefc:
				err = cc.writePreferred()
			case <-idle.C:
				n := cc.frames.Load()
				if n == lastFrames {
					return errors.New("derpws: no frame from the relay for too long; reconnecting")
				}
				lastFrames = n
			case <-cc.rdone:
				return nil
			case <-c.ctx.Done():
				return nil
			}
		}
		if err != nil {
			return err
		}
	}
}

// writePreferred sends NotePreferred with the client's current choice.
func (cc *clientConn) writePreferred() error {
	v := byte(0)
	if cc.c.preferred.Load() {
		v = 1
	}
	return writeFrame(cc.bw, FrameNotePreferred, []byte{v})
}

func (cc *clientConn) writePacket(p packet) error {
	var err error
	if p.fwd {
		err = writeForwardFrame(cc.bw, &p.src, &p.peer, p.buf.b)
	} else {
		err = writePacketFrame(cc.bw, FrameSendPacket, &p.peer, p.buf.b)
	}
	putBuf(p.buf)
	if err != nil {
		cc.c.sendDrops.Add(1)
		return err
	}
	cc.c.packetsSent.Add(1)
	return nil
}
