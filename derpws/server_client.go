//go:build !js

package derpws

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"tsconnect/internal/safetext"
	"tsconnect/key"
)

// sclient is the server side of one authenticated connection. Its reader runs on the
// connection's own goroutine; one writer goroutine owns the buffered writer.
type sclient struct {
	s     *Server
	key   key.Public
	nc    net.Conn
	br    *bufio.Reader
	bw    *bufio.Writer
	stats *keyStats

	q        *sendQueue            // packets to the client, stamped with their source
	ctrlq    chan ctrlFrame        // small control frames to the client
	stopc    chan struct{}         // closed by stop
	wdone    chan struct{}         // closed when the writer has ended
	once     sync.Once             // guards stop
	final    ctrlFrame             // a last frame for the writer to send, set before stopc closes
	num      uint64                // connection number, unique within the server
	sent     map[key.Public]uint64 // whom this client sent to (key → their connection number); the reader's alone
	bytes    tokenBucket           // the reader's read limits
	frms     tokenBucket
	pause    *time.Timer // the reader's throttle timer, made on first use
	armed    bool        // the reader has a frame timeout set on nc
	deadline time.Time   // and this is it (a WebSocket reports an expired one as a cancel)
	ping     [8]byte     // the reader's buffer for a Ping payload

	preferred atomic.Bool // the client's NotePreferred
	canMesh   bool        // a mesh peer: it showed the region's mesh key

	presMu sync.Mutex    // guards pres
	pres   []presence    // PeerPresent/PeerGone waiting for a watching mesh peer
	presc  chan struct{} // signals pres to the writer
}

func newSclient(s *Server, k key.Public, nc net.Conn, br *bufio.Reader, bw *bufio.Writer) *sclient {
	return &sclient{
		s:     s,
		key:   k,
		nc:    nc,
		br:    br,
		bw:    bw,
		q:     newSendQueue(sendQueueDepth, sendQueueBytes, s.queued),
		ctrlq: make(chan ctrlFrame, ctrlQueueDepth),
		stopc: make(chan struct{}),
		wdone: make(chan struct{}),
		sent:  make(map[key.Public]uint64),
		presc: make(chan struct{}, 1),
		bytes: newTokenBucket(s.bytesPerSec, 2*maxFrameLen),
		frms:  newTokenBucket(s.framesPerSec, 64),
	}
}

// run serves the registered client until its connection ends, then cleans up.
func (c *sclient) run() {
	go c.writeLoop()
	err := c.readLoop() // never nil
	if err != io.EOF && !isClosedErr(err) {
		c.s.logf("derpws: closing %s from %v: %s", c.key.ShortString(), c.nc.RemoteAddr(), safetext.Bounded(err.Error(), 0))
	}
	c.stop(0, nil)
	<-c.wdone
	c.nc.Close()
	if c.s.unregister(c) {
		// Tell everyone this client sent to that it is gone, unless they reconnected since.
		for k, num := range c.sent {
			if dst := c.s.lookup(k); dst != nil && dst.num == num {
				dst.queueCtrl(ctrlFrame{t: FramePeerGone, k: c.key, reason: PeerGoneDisconnected})
			}
		}
	}
	// Free what is still queued.
	if n := uint64(c.q.close()); n > 0 {
		c.stats.drops.Add(n)
		c.s.m.dropDisconnected.Add(n)
	}
}

// stop ends the connection; if t is non-zero the writer sends that frame first (bounded by the
// write timeout).
func (c *sclient) stop(t FrameType, payload []byte) {
	c.once.Do(func() {
		c.final = ctrlFrame{t: t, payload: payload}
		close(c.stopc)
	})
}

// readLoop reads the client's frames until an error.
func (c *sclient) readLoop() error {
	for {
		t, n, err := c.readHeader()
		if err == nil {
			err = c.readFrame(t, n)
		}
		if err != nil {
			if c.armed && (isTimeout(err) || !time.Now().Before(c.deadline)) {
				c.s.m.frameTimeouts.Add(1)
				return fmt.Errorf("derpws: frame (type 0x%02x, %d bytes announced) not complete within %v: %w", byte(t), n, c.s.frameTimeout, err)
			}
			if isBadFrame(err) {
				c.s.m.badFrames.Add(1)
			}
			return err
		}
		if c.armed {
			c.armed = false
			c.nc.SetReadDeadline(time.Time{})
		}
		if err := c.throttle(n); err != nil {
			return err
		}
	}
}

// readHeader waits for the next frame as long as it takes, then reads its header. Once a
// frame has begun and is not all buffered, the rest must come within the frame timeout.
func (c *sclient) readHeader() (FrameType, uint32, error) {
	if _, err := c.br.Peek(1); err != nil {
		return 0, 0, err
	}
	if c.br.Buffered() < frameHeaderLen {
		c.arm()
	}
	t, n, err := readFrameHeader(c.br)
	if err == nil && c.br.Buffered() < int(n) {
		c.arm()
	}
	return t, n, err
}

// arm starts the frame timeout for the frame being read.
func (c *sclient) arm() {
	if c.s.frameTimeout > 0 && !c.armed {
		c.armed = true
		c.deadline = time.Now().Add(c.s.frameTimeout)
		c.nc.SetReadDeadline(c.deadline)
	}
}

// readFrame reads and handles the payload of one frame of type t and n bytes.
func (c *sclient) readFrame(t FrameType, n uint32) error {
	switch t {
	case FrameSendPacket:
		if n < KeyLen {
			return errShortFrame(t, n)
		}
		if n-KeyLen > MaxPacketSize {
			return errBigPacket(t, n-KeyLen)
		}
		dst, err := readKey(c.br)
		if err != nil {
			return err
		}
		pb := getBuf(int(n - KeyLen))
		if _, err := io.ReadFull(c.br, pb.b); err != nil {
			putBuf(pb)
			return unexpectedEOF(err)
		}
		c.forward(dst, pb)
	case FrameNotePreferred:
		if n != 1 {
			return errFrameSize(t, n, "exactly 1")
		}
		b, err := c.br.ReadByte()
		if err != nil {
			return unexpectedEOF(err)
		}
		c.preferred.Store(b != 0)
	case FramePing:
		if n < 8 || n > maxPingLen {
			return errFrameSize(t, n, fmt.Sprintf("8 to %d", maxPingLen))
		}
		b, err := readSmallPayload(c.br, 8, c.ping[:])
		if err != nil {
			return err
		}
		if err := discard(c.br, n-8); err != nil {
			return err
		}
		f := ctrlFrame{t: FramePong}
		copy(f.ping[:], b)
		c.queueCtrl(f)
	case FrameWatchConns, FrameForwardPacket, FrameClosePeer:
		return c.meshFrame(t, n)
	default:
		// Pong, a second ClientInfo and types from the future are skipped, as the stock
		// relay does; their length is bounded by maxFrameLen and they count against the
		// client's rate limit.
		return discard(c.br, n)
	}
	return nil
}

// throttle charges a frame of n bytes to the client's rate limits and, when it is over them,
// pauses the reader until it is not. Mesh peers carry a whole relay's traffic and are not limited.
func (c *sclient) throttle(n uint32) error {
	if c.canMesh {
		return nil
	}
	d := max(c.bytes.take(float64(n+frameHeaderLen)), c.frms.take(1))
	if d <= 0 {
		return nil
	}
	c.s.m.throttled.Add(1)
	if c.pause == nil {
		c.pause = time.NewTimer(d)
	} else {
		c.pause.Reset(d)
	}
	select {
	case <-c.pause.C:
		return nil
	case <-c.stopc:
		c.pause.Stop()
		return net.ErrClosed
	}
}

// forward hands a packet from c to its destination's queue, stamped with c's key.
func (c *sclient) forward(dstKey key.Public, pb *pktBuf) {
	n := uint64(len(pb.b))
	c.stats.packetsIn.Add(1)
	c.stats.bytesIn.Add(n)
	c.s.m.packetsIn.Add(1)
	c.s.m.bytesIn.Add(n)
	dst, via := c.s.route(dstKey)
	if dst == nil {
		if via != nil {
			c.s.m.forwardedOut.Add(1)
			via.enqueue(packet{peer: dstKey, src: c.key, fwd: true, buf: pb})
			return
		}
		c.s.m.dropUnknownDest.Add(1)
		putBuf(pb)
		c.queueCtrl(ctrlFrame{t: FramePeerGone, k: dstKey, reason: PeerGoneNotHere})
		return
	}
	if c.sent[dstKey] != dst.num {
		c.sent[dstKey] = dst.num
	}
	dst.enqueue(packet{peer: c.key, buf: pb})
}

// enqueue queues p for the client; it never blocks. When the queue is full a packet of the
// source holding most of it is dropped (see sendQueue).
func (c *sclient) enqueue(p packet) {
	n, why := c.q.enqueue(p)
	if n == 0 {
		return
	}
	c.stats.drops.Add(uint64(n))
	switch why {
	case dropOwnShare:
		c.s.m.dropQueueFull.Add(uint64(n))
	case dropFairShare:
		c.s.m.dropFairShare.Add(uint64(n))
	case dropRelayFull:
		c.s.m.dropRelayFull.Add(uint64(n))
	default:
		c.s.m.dropDisconnected.Add(uint64(n))
	}
}

// queueCtrl queues a control frame, dropping it if the control queue is full.
func (c *sclient) queueCtrl(f ctrlFrame) {
	select {
	case c.ctrlq <- f:
	default:
	}
}

// writeLoop owns c.bw: it writes queued frames and flushes when the queues run dry.
func (c *sclient) writeLoop() {
	defer close(c.wdone)
	ka := time.NewTimer(jitterDown(c.s.keepAlive))
	defer ka.Stop()
	batch := make([]packet, 0, writeBatch)
	for {
		var err error
		select {
		case f := <-c.ctrlq:
			err = c.writeCtrl(&f)
		case <-c.presc:
			err = c.writePresence()
		case <-c.stopc:
			c.finish()
			return
		default:
			if batch = c.q.take(batch[:0], writeBatch); len(batch) > 0 {
				for i := range batch {
					if err == nil {
						err = c.writePacket(batch[i])
					} else {
						c.dropUnwritten(batch[i])
					}
					batch[i] = packet{}
				}
				break
			}
			if c.bw.Buffered() > 0 {
				err = c.bw.Flush()
				break
			}
			select {
			case <-c.q.ready:
			case f := <-c.ctrlq:
				err = c.writeCtrl(&f)
			case <-c.presc:
				err = c.writePresence()
			case <-ka.C:
				ka.Reset(jitterDown(c.s.keepAlive))
				err = writeFrameHeader(c.bw, FrameKeepAlive, 0)
			case <-c.stopc:
				c.finish()
				return
			}
		}
		if err != nil {
			c.nc.Close() // ends the reader too
			<-c.stopc
			return
		}
	}
}

// finish sends the final frame stop asked for, if any, and closes the connection.
func (c *sclient) finish() {
	if c.final.t != 0 {
		if writeFrame(c.bw, c.final.t, c.final.payload) == nil {
			c.bw.Flush()
		}
	}
	c.nc.Close()
}

// dropUnwritten counts and frees a packet taken from the queue after a write failed.
func (c *sclient) dropUnwritten(p packet) {
	c.stats.drops.Add(1)
	c.s.m.dropWriteError.Add(1)
	putBuf(p.buf)
}

func (c *sclient) writePacket(p packet) error {
	err := writePacketFrame(c.bw, FrameRecvPacket, &p.peer, p.buf.b)
	if err == nil {
		c.stats.packetsOut.Add(1)
		c.stats.bytesOut.Add(uint64(len(p.buf.b)))
		c.s.m.packetsOut.Add(1)
		c.s.m.bytesOut.Add(uint64(len(p.buf.b)))
		putBuf(p.buf)
		return nil
	}
	c.dropUnwritten(p)
	return err
}

func (c *sclient) writeCtrl(f *ctrlFrame) error {
	switch f.t {
	case FramePeerGone:
		return writePeerGone(c.bw, &f.k, f.reason)
	case FramePong:
		return writeFrame(c.bw, FramePong, f.ping[:])
	default:
		return writeFrame(c.bw, f.t, f.payload)
	}
}

// jitterDown returns d less up to a tenth of it, so periodic frames of many clients spread out.
func jitterDown(d time.Duration) time.Duration {
	return d - rand.N(d/10+1)
}
