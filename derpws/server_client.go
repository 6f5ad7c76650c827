//go:build !js

package derpws

import (
	"bufio"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

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

	sendq chan packet           // packets to the client, stamped with their source
	ctrlq chan ctrlFrame        // small control frames to the client
	stopc chan struct{}         // closed by stop
	wdone chan struct{}         // closed when the writer has ended
	once  sync.Once             // guards stop
	final ctrlFrame             // a last frame for the writer to send, set before stopc closes
	num   uint64                // connection number, unique within the server
	sent  map[key.Public]uint64 // whom this client sent to (key → their connection number); the reader's alone

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
		sendq: make(chan packet, sendQueueDepth),
		ctrlq: make(chan ctrlFrame, ctrlQueueDepth),
		stopc: make(chan struct{}),
		wdone: make(chan struct{}),
		sent:  make(map[key.Public]uint64),
		presc: make(chan struct{}, 1),
	}
}

// run serves the registered client until its connection ends, then cleans up.
func (c *sclient) run() {
	go c.writeLoop()
	err := c.readLoop()
	if err != nil && err != io.EOF && !isClosedErr(err) {
		c.s.logf("derpws: %s: %v", c.key.ShortString(), err)
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
	for {
		select {
		case p := <-c.sendq:
			c.stats.drops.Add(1)
			c.s.m.dropDisconnected.Add(1)
			putBuf(p.buf)
		default:
			return
		}
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
	var scratch [64]byte
	for {
		t, n, err := readFrameHeader(c.br)
		if err != nil {
			return err
		}
		switch t {
		case FrameSendPacket:
			if n < KeyLen {
				return errShortFrame(t, n)
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
			b, err := readSmallPayload(c.br, min(n, 1), scratch[:])
			if err != nil {
				return err
			}
			if err := discard(c.br, n-uint32(len(b))); err != nil {
				return err
			}
			c.preferred.Store(len(b) == 1 && b[0] != 0)
		case FramePing:
			if n < 8 {
				return errShortFrame(t, n)
			}
			b, err := readSmallPayload(c.br, 8, scratch[:])
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
			if err := c.meshFrame(t, n); err != nil {
				return err
			}
		default:
			// Pong and types from the future are skipped.
			if err := discard(c.br, n); err != nil {
				return err
			}
		}
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

// enqueue queues p for the client, dropping the oldest queued packet when full; it never blocks.
func (c *sclient) enqueue(p packet) {
	for range 4 {
		select {
		case c.sendq <- p:
			return
		default:
		}
		select {
		case old := <-c.sendq:
			c.stats.drops.Add(1)
			c.s.m.dropQueueFull.Add(1)
			putBuf(old.buf)
		default:
		}
	}
	c.stats.drops.Add(1)
	c.s.m.dropQueueFull.Add(1)
	putBuf(p.buf)
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
	for {
		var err error
		select {
		case p := <-c.sendq:
			err = c.writePacket(p)
		case f := <-c.ctrlq:
			err = c.writeCtrl(&f)
		case <-c.presc:
			err = c.writePresence()
		default:
			if c.bw.Buffered() > 0 {
				err = c.bw.Flush()
				break
			}
			select {
			case p := <-c.sendq:
				err = c.writePacket(p)
			case f := <-c.ctrlq:
				err = c.writeCtrl(&f)
			case <-c.presc:
				err = c.writePresence()
			case <-ka.C:
				ka.Reset(jitterDown(c.s.keepAlive))
				err = writeFrameHeader(c.bw, FrameKeepAlive, 0)
			case <-c.stopc:
				if c.final.t != 0 {
					if writeFrame(c.bw, c.final.t, c.final.payload) == nil {
						c.bw.Flush()
					}
				}
				c.nc.Close()
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

func (c *sclient) writePacket(p packet) error {
	err := writePacketFrame(c.bw, FrameRecvPacket, &p.peer, p.buf.b)
	if err == nil {
		c.stats.packetsOut.Add(1)
		c.stats.bytesOut.Add(uint64(len(p.buf.b)))
		c.s.m.packetsOut.Add(1)
		c.s.m.bytesOut.Add(uint64(len(p.buf.b)))
	} else {
		c.stats.drops.Add(1)
		c.s.m.dropWriteError.Add(1)
	}
	putBuf(p.buf)
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
