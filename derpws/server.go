//go:build !js

package derpws

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"tsconnect/internal/safetext"
	"tsconnect/key"
)

// ServerOptions configures a Server. A nil *ServerOptions means defaults.
type ServerOptions struct {
	// Logf, if non-nil, receives log lines. Keys are logged in their short public form only.
	Logf func(format string, args ...any)
	// VerifyClient, if non-nil, is called after a client proved its key in the handshake; if it
	// returns an error the connection is closed (after a Health frame saying so) and no
	// ServerInfo is sent. Control uses it so that only keys of registered nodes connect.
	VerifyClient func(ctx context.Context, k key.Public) error
	// MeshKey, if non-empty, is the region's shared mesh key (64 hex digits, like a stock relay's
	// key file). A client whose ClientInfo carries the same key is a mesh peer: it is admitted
	// without VerifyClient and may send WatchConns, ForwardPacket and ClosePeer. Those frames from
	// any other client close its connection; so does a ClientInfo with a different mesh key.
	MeshKey string
	// KeepAlive is the interval between KeepAlive frames to each client (jittered down by up
	// to a tenth); 0 means 60 s.
	KeepAlive time.Duration

	// Limits; for each, 0 means the default and a negative value means no limit.

	// ClientBytesPerSecond and ClientFramesPerSecond bound what the relay reads from one
	// connection (frame headers included), with a burst of a tenth of a second. A client over
	// them is not dropped: the relay stops reading from it until its balance recovers, so TCP
	// slows the client down and the relay spends no work on the excess. Defaults: 1 GiB/s
	// and 1,000,000 frames/s. Mesh peers are not limited.
	ClientBytesPerSecond  int
	ClientFramesPerSecond int
	// FrameTimeout bounds how long a client may take to send a whole frame once its first byte
	// has arrived; a client that stalls mid-frame is closed. Time between frames is not
	// limited (the relay's KeepAlive frames check the connection). Default 10 s.
	FrameTimeout time.Duration
	// MaxConns bounds the relay's connections, in the handshake or connected; one more is
	// answered 503. Default 20,000.
	MaxConns int
	// MaxQueuedBytes bounds the packet buffers queued for all clients together, beyond the
	// first 64 KiB of each client's queue (always its own, so every client keeps being served):
	// once spent, a queue over its 64 KiB drops its heaviest source's oldest packet for each new
	// one, so a party flooding many slow receivers holds at most this much. Each client's queue
	// is also bounded (512 packets, 1 MiB). Default 256 MiB.
	MaxQueuedBytes int
}

// Server is a DERP relay. Serve it over HTTP with ServeHTTP.
type Server struct {
	priv      key.Private
	pub       key.Public
	logf      func(format string, args ...any)
	verify    func(context.Context, key.Public) error
	keepAlive time.Duration
	meshKey   string
	m         serverMetrics

	bytesPerSec, framesPerSec int           // per-client read limits, 0 for none
	frameTimeout              time.Duration // 0 for none
	maxConns                  int           // 0 for none
	queued                    *queueBudget  // bytes queued for clients beyond their reserves

	mu       sync.RWMutex
	watchers map[*sclient]struct{}  // mesh peers that sent WatchConns
	fwd      map[key.Public]*Client // keys connected to a peer relay → the mesh client to it
	mesh     []*meshPeer            // mesh clients to peer relays
	closed   bool
	clients  map[key.Public]*sclient  // the live connection of each key
	conns    map[net.Conn]*sclient    // every connection, nil value while in the handshake
	stats    map[key.Public]*keyStats // counters per key, kept across reconnects
	wg       sync.WaitGroup           // one per connection being served
	nextNum  uint64                   // connection numbers, under mu
}

// Timing of a server.
const (
	defaultKeepAlive   = 60 * time.Second
	handshakeTimeout   = 10 * time.Second
	serverWriteTimeout = 2 * time.Second
	// sendQueueDepth and sendQueueBytes bound the per-client queue of packets waiting for the
	// client's writer; when full, the oldest packet of the source holding most of it is dropped
	// (see sendQueue), so a slow client never stalls its senders and a flooding sender never
	// crowds out the others. The queue absorbs a sender's burst of one TCP window toward a
	// client that reads in bursts (a browser whose Worker is busy stops reading its WebSocket):
	// the wasm node's receive window (tunstack's recvBufMax, 256 KiB, ~210 full packets of
	// 2 KiB buffers) fits, so a bulk transfer to a browser loses nothing here. With 32 packets
	// the relay dropped ~1% of a bulk download's packets and TCP's loss recovery held it to 1–3
	// MiB/s ("Browser terminal speed" in docs/architecture.md).
	sendQueueDepth = 512
	sendQueueBytes = 1 << 20
	// writeBatch is how many queued packets the writer takes at once.
	writeBatch = 16
	// restartReconnectIn and restartTryFor are the figures of the Restarting frame sent on Close.
	restartReconnectIn = 500 * time.Millisecond
	restartTryFor      = 60 * time.Second
)

// NewServer returns a relay whose identity is priv. opts may be nil.
func NewServer(priv key.Private, opts *ServerOptions) *Server {
	if opts == nil {
		opts = &ServerOptions{}
	}
	s := &Server{
		priv:      priv,
		pub:       priv.Public(),
		logf:      opts.Logf,
		verify:    opts.VerifyClient,
		keepAlive: opts.KeepAlive,
		meshKey:   strings.TrimSpace(opts.MeshKey),
		watchers:  make(map[*sclient]struct{}),
		fwd:       make(map[key.Public]*Client),
		clients:   make(map[key.Public]*sclient),
		conns:     make(map[net.Conn]*sclient),
		stats:     make(map[key.Public]*keyStats),
	}
	if s.logf == nil {
		s.logf = func(string, ...any) {}
	}
	if s.keepAlive <= 0 {
		s.keepAlive = defaultKeepAlive
	}
	s.bytesPerSec = limitOr(opts.ClientBytesPerSecond, defaultClientBytesPerSecond)
	s.framesPerSec = limitOr(opts.ClientFramesPerSecond, defaultClientFramesPerSecond)
	s.frameTimeout = limitOr(opts.FrameTimeout, defaultFrameTimeout)
	s.maxConns = limitOr(opts.MaxConns, defaultMaxConns)
	s.queued = &queueBudget{max: int64(limitOr(opts.MaxQueuedBytes, defaultMaxQueuedBytes))}
	return s
}

// PublicKey returns the relay's public key (the one in ServerKey and Derp-Public-Key).
func (s *Server) PublicKey() key.Public { return s.pub }

// Close tells every client the relay is restarting (a Restarting frame), closes all
// connections and waits for their goroutines. Later connections are refused.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	restart := restartingPayload(uint32(restartReconnectIn/time.Millisecond), uint32(restartTryFor/time.Millisecond))
	for nc, c := range s.conns {
		if c == nil {
			nc.Close() // still in the handshake
			continue
		}
		c.stop(FrameRestarting, restart)
	}
	mesh := s.mesh
	s.mesh = nil
	s.mu.Unlock()
	for _, mp := range mesh {
		mp.c.Close()
	}
	s.wg.Wait()
	return nil
}

// ClosePeer drops the live connection of k at once, if any. A client normally reconnects; pair
// it with a VerifyClient that now refuses k to keep it out.
func (s *Server) ClosePeer(k key.Public) {
	s.mu.RLock()
	c := s.clients[k]
	s.mu.RUnlock()
	if c != nil {
		s.logf("derpws: closing %s on request", k.ShortString())
		c.nc.Close()
	}
}

var (
	errServerClosed = errors.New("derpws: server closed")
	errRelayFull    = errors.New("derpws: relay has its maximum of connections (ServerOptions.MaxConns)")
)

// track records a new connection in the handshake; it fails once the server is closed.
func (s *Server) track(nc net.Conn) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errServerClosed
	}
	if s.maxConns > 0 && len(s.conns) >= s.maxConns {
		s.m.connsRefused.Add(1)
		return errRelayFull
	}
	s.conns[nc] = nil
	s.wg.Add(1)
	return nil
}

// untrack forgets a connection whose goroutines have ended.
func (s *Server) untrack(nc net.Conn) {
	s.mu.Lock()
	delete(s.conns, nc)
	s.mu.Unlock()
	s.wg.Done()
}

// register makes c the live connection of its key; an older one is told and closed.
func (s *Server) register(c *sclient) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errServerClosed
	}
	st := s.stats[c.key]
	if st == nil && len(s.stats) >= maxStatsKeys+len(s.clients) {
		for k := range s.stats {
			if s.clients[k] == nil {
				delete(s.stats, k)
			}
		}
	}
	if st == nil {
		st = new(keyStats)
		s.stats[c.key] = st
	}
	c.stats = st
	s.nextNum++
	c.num = s.nextNum
	st.connects.Add(1)
	if !c.canMesh {
		s.m.clients.Add(1)
		s.broadcastLocked(c, true)
	}
	if old := s.clients[c.key]; old != nil {
		s.logf("derpws: %s connected again; the newer connection wins", c.key.ShortString())
		old.stop(FrameHealth, []byte("another connection with this key replaced this one"))
	}
	s.clients[c.key] = c
	s.conns[c.nc] = c
	return nil
}

// unregister removes c if it is still its key's live connection and returns whether it was.
func (s *Server) unregister(c *sclient) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.watchers, c)
	if s.clients[c.key] != c {
		return false
	}
	delete(s.clients, c.key)
	if !c.canMesh {
		s.m.clients.Add(-1)
		s.broadcastLocked(c, false)
	}
	return true
}

// lookup returns the live connection of k, or nil.
func (s *Server) lookup(k key.Public) *sclient {
	s.mu.RLock()
	c := s.clients[k]
	s.mu.RUnlock()
	return c
}

// serveConn runs the protocol on nc until it ends. br reads from nc (it may hold bytes already
// read). It blocks for the life of the connection.
func (s *Server) serveConn(ctx context.Context, nc net.Conn, br *bufio.Reader) {
	if err := s.track(nc); err != nil {
		nc.Close()
		return
	}
	defer s.untrack(nc)
	defer nc.Close()

	bw := bufio.NewWriterSize(deadlineWriter{nc, serverWriteTimeout}, writeBufSize)
	k, canMesh, err := s.handshake(ctx, nc, br, bw)
	if err != nil {
		s.m.handshakeFailures.Add(1)
		s.logf("derpws: handshake with %v: %s", nc.RemoteAddr(), safetext.Bounded(err.Error(), 0))
		return
	}
	c := newSclient(s, k, nc, br, bw)
	c.canMesh = canMesh
	if err := s.register(c); err != nil {
		return
	}
	// ServerInfo goes out only once the key is registered: a client that sees itself
	// connected can be sent to at once, with no window where it is "not here".
	if err := s.sendServerInfo(nc, bw, k); err != nil {
		s.unregister(c)
		return
	}
	c.run()
}

// handshake sends ServerKey, authenticates the ClientInfo and admits the key; canMesh reports a
// mesh peer (it showed the mesh key).
func (s *Server) handshake(ctx context.Context, nc net.Conn, br *bufio.Reader, bw *bufio.Writer) (k key.Public, canMesh bool, err error) {
	nc.SetDeadline(time.Now().Add(handshakeTimeout))
	defer nc.SetDeadline(time.Time{})
	if err := writeFrame(bw, FrameServerKey, serverKeyPayload(s.pub)); err != nil {
		return key.Public{}, false, err
	}
	if err := bw.Flush(); err != nil {
		return key.Public{}, false, err
	}
	t, n, err := readFrameHeader(br)
	if err != nil {
		return key.Public{}, false, err
	}
	if t != FrameClientInfo {
		return key.Public{}, false, fmt.Errorf("derpws: first client frame is of type 0x%02x, not ClientInfo", byte(t))
	}
	if n > maxClientInfoLen {
		return key.Public{}, false, fmt.Errorf("derpws: ClientInfo frame of %d bytes, limit %d", n, maxClientInfoLen)
	}
	b, err := readSmallPayload(br, n, nil)
	if err != nil {
		return key.Public{}, false, err
	}
	k, info, err := parseClientInfo(b, s.priv)
	if err != nil {
		return key.Public{}, false, err
	}
	if info.MeshKey != "" {
		if !s.meshKeyMatches(info.MeshKey) {
			s.m.meshRefused.Add(1)
			writeFrame(bw, FrameHealth, []byte("wrong mesh key"))
			bw.Flush()
			return key.Public{}, false, errors.New("derpws: " + k.ShortString() + " presented a mesh key that is not this relay's")
		}
		return k, true, nil
	}
	if s.verify != nil {
		if err := s.verify(ctx, k); err != nil {
			s.m.refused.Add(1)
			writeFrame(bw, FrameHealth, []byte("this relay does not admit this key"))
			bw.Flush()
			return key.Public{}, false, errors.Join(errors.New("derpws: "+k.ShortString()+" not admitted"), err)
		}
	}
	return k, false, nil
}

// sendServerInfo completes the handshake of an admitted, registered key.
func (s *Server) sendServerInfo(nc net.Conn, bw *bufio.Writer, k key.Public) error {
	nc.SetWriteDeadline(time.Now().Add(handshakeTimeout))
	defer nc.SetWriteDeadline(time.Time{})
	si, err := serverInfoPayload(s.priv, k, &ServerInfo{Version: ProtocolVersion})
	if err != nil {
		return err
	}
	if err := writeFrame(bw, FrameServerInfo, si); err != nil {
		return err
	}
	return bw.Flush()
}
