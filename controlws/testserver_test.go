//go:build !js

package controlws

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"tsconnect/derpws"
	"tsconnect/key"
)

// goodAuthKey is the one auth key the test server accepts.
const goodAuthKey = "tskey-test-good"

// testServer is a minimal control server speaking the protocol over a real loopback HTTP server.
// It is just enough to drive the client; the real one lives in package control.
type testServer struct {
	key key.Private
	url string
	hs  *httptest.Server

	// peers is how many extra peers full maps carry (to make them large).
	peers int
	// versions is the protocol versions it speaks (supported, unless a test asks for others).
	versions versionRange

	handlers sync.WaitGroup // serveControl calls, which outlive hs.Close once hijacked

	mu         sync.Mutex
	accepted   []key.Public              // machine keys Accept proved
	acceptErrs []error                   // handshakes Accept refused
	handled    int                       // envelopes acted on
	nodes      map[key.Public]key.Public // node key → machine key
	hostinfo   map[key.Public]Hostinfo   // node key → latest Hostinfo
	streams    chan *mapStream           // each map stream, once its full map went out
	acceptEv   chan error                // each Accept's outcome (nil: accepted)
	raw        []*recConn                // every TCP connection, recorded
}

// mapStream is one client's live map stream on the test server.
type mapStream struct {
	conn     *Conn
	streamID uint64
	node     Node
}

// push sends a map delta down the stream.
func (s *mapStream) push(r MapResponse) error { return s.conn.Send(TypeMapResponse, s.streamID, &r) }

func newTestServer(t testing.TB) *testServer {
	s := startTestServer()
	t.Cleanup(s.Close)
	return s
}

// startTestServer starts a server; Close stops it. (Examples have no testing.TB.)
func startTestServer() *testServer { return startTestServerVersions(supported) }

// startTestServerVersions starts a server speaking the versions vr.
func startTestServerVersions(vr versionRange) *testServer {
	return startTestServerOn(vr, key.NewPrivate(), nil)
}

// startTestServerOn starts a server speaking vr with key k on ln (nil: a loopback port of
// httptest's choosing).
func startTestServerOn(vr versionRange, k key.Private, ln net.Listener) *testServer {
	s := &testServer{
		versions: vr,
		key:      k,
		nodes:    make(map[key.Public]key.Public),
		hostinfo: make(map[key.Public]Hostinfo),
		streams:  make(chan *mapStream, 16),
		acceptEv: make(chan error, 16),
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+KeyPath, keyHandler(s.key.Public(), vr))
	mux.HandleFunc(Path, s.serveControl)
	s.hs = httptest.NewUnstartedServer(mux)
	if ln != nil {
		s.hs.Listener.Close()
		s.hs.Listener = ln
	}
	s.hs.Listener = &recListener{Listener: s.hs.Listener, s: s}
	s.hs.Start()
	s.url = s.hs.URL
	return s
}

// Close stops the server, ending every connection (hijacked ones too) and waiting for the handlers.
func (s *testServer) Close() {
	s.mu.Lock()
	for _, rc := range s.raw {
		rc.Close()
	}
	s.mu.Unlock()
	s.hs.Close()
	s.handlers.Wait()
}

func (s *testServer) serveControl(w http.ResponseWriter, r *http.Request) {
	s.handlers.Add(1)
	defer s.handlers.Done()
	c, err := acceptHTTP(w, r, s.key, s.versions)
	if err != nil {
		s.mu.Lock()
		s.acceptErrs = append(s.acceptErrs, err)
		s.mu.Unlock()
		s.acceptEv <- err
		return
	}
	defer c.Close()
	s.mu.Lock()
	s.accepted = append(s.accepted, c.PeerKey())
	s.mu.Unlock()
	s.acceptEv <- nil
	var ms *mapStream
	for {
		env, err := c.ReadEnvelope()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.handled++
		s.mu.Unlock()
		if env.V != c.Version() {
			c.WriteEnvelope(ErrorEnvelope(env.ID, CodeUnsupportedVer, fmt.Sprintf("version %d", env.V)))
			continue
		}
		switch env.Type {
		case TypeRegister:
			var req RegisterRequest
			if err := env.DecodeBody(&req); err != nil {
				c.WriteEnvelope(ErrorEnvelope(env.ID, CodeBadRequest, err.Error()))
				continue
			}
			s.mu.Lock()
			owner, bound := s.nodes[req.NodeKey]
			switch {
			case bound && owner != c.PeerKey():
				s.mu.Unlock()
				c.WriteEnvelope(ErrorEnvelope(env.ID, CodeNodeKeyInUse, "node key bound to another machine"))
				continue
			case !bound && req.AuthKey != goodAuthKey:
				s.mu.Unlock()
				c.WriteEnvelope(ErrorEnvelope(env.ID, CodeInvalidKey, "no such auth key"))
				continue
			}
			s.nodes[req.NodeKey] = c.PeerKey()
			s.hostinfo[req.NodeKey] = req.Hostinfo
			s.mu.Unlock()
			c.Send(TypeRegisterResponse, env.ID, &RegisterResponse{
				Node: s.nodeFor(req.NodeKey, c.PeerKey(), req.Hostinfo),
				User: UserProfile{ID: 1, LoginName: "alice@example.com"},
			})
		case TypeMapRequest:
			var req MapRequest
			if err := env.DecodeBody(&req); err != nil {
				c.WriteEnvelope(ErrorEnvelope(env.ID, CodeBadRequest, err.Error()))
				continue
			}
			s.mu.Lock()
			owner, bound := s.nodes[req.NodeKey]
			s.mu.Unlock()
			if !bound || owner != c.PeerKey() {
				c.WriteEnvelope(ErrorEnvelope(env.ID, CodeNotRegistered, "register first"))
				continue
			}
			self := s.nodeFor(req.NodeKey, owner, req.Hostinfo)
			ms = &mapStream{conn: c, streamID: env.ID, node: self}
			c.Send(TypeMapResponse, env.ID, &MapResponse{Full: s.fullMap(self)})
			s.streams <- ms
		case TypeUpdate:
			var u Update
			if err := env.DecodeBody(&u); err != nil {
				c.WriteEnvelope(ErrorEnvelope(env.ID, CodeBadRequest, err.Error()))
				continue
			}
			c.Send(TypeOK, env.ID, nil)
			if ms != nil {
				self := ms.node
				self.Hostname = u.Hostinfo.Hostname
				ms.push(MapResponse{Self: &self})
			}
		case TypeLogout:
			c.Send(TypeOK, env.ID, nil)
			if ms != nil {
				c.WriteEnvelope(ErrorEnvelope(ms.streamID, CodeNodeDeleted, "node logged out"))
			}
		default:
			c.WriteEnvelope(ErrorEnvelope(env.ID, CodeBadRequest, "unknown message type "+env.Type))
		}
	}
}

func (s *testServer) nodeFor(nodeKey, machine key.Public, hi Hostinfo) Node {
	return Node{
		ID: 1, Name: hi.Hostname, Key: nodeKey, MachineKey: machine, Hostname: hi.Hostname, OS: hi.OS, User: 1,
		Addresses: []netip.Prefix{netip.MustParsePrefix("100.64.0.1/32"), netip.MustParsePrefix("fd7a:115c:a1e0::1/128")},
	}
}

func (s *testServer) fullMap(self Node) *NetworkMap {
	nm := &NetworkMap{
		Self:   self,
		Users:  []UserProfile{{ID: 1, LoginName: "alice@example.com", DisplayName: "Alice"}},
		Domain: "test.tsconnect",
		DERPMap: &derpws.Map{Regions: map[int]*derpws.Region{1: {
			RegionID: 1, RegionCode: "lo", RegionName: "Loopback",
			Nodes: []*derpws.Node{{Name: "1a", RegionID: 1, HostName: "127.0.0.1", DERPPort: 3340, InsecureForTests: true}},
		}}},
	}
	for i := range s.peers {
		nm.Peers = append(nm.Peers, testPeer(int64(100+i)))
	}
	return nm
}

// waitStream returns the next map stream the server started.
func (s *testServer) waitStream(t testing.TB) *mapStream {
	t.Helper()
	select {
	case ms := <-s.streams:
		return ms
	case <-time.After(time.Minute): // a hang guard, not a timed assertion
		t.Fatal("no map stream started")
		return nil
	}
}

func (s *testServer) stats() (accepted, refused, handled int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.accepted), len(s.acceptErrs), s.handled
}

// recListener records every byte of every accepted TCP connection: the WebSocket frames on the wire.
type recListener struct {
	net.Listener
	s *testServer
}

func (l *recListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	rc := &recConn{Conn: c}
	l.s.mu.Lock()
	l.s.raw = append(l.s.raw, rc)
	l.s.mu.Unlock()
	return rc, nil
}

// recConn is a net.Conn that keeps copies of what it read (from the client) and wrote (to it).
type recConn struct {
	net.Conn
	mu          sync.Mutex
	read, wrote bytes.Buffer
}

func (c *recConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.read.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *recConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.wrote.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

// captured returns copies of what connection i read and wrote so far.
func (s *testServer) captured(i int) (fromClient, toClient []byte) {
	s.mu.Lock()
	rc := s.raw[i]
	s.mu.Unlock()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return bytes.Clone(rc.read.Bytes()), bytes.Clone(rc.wrote.Bytes())
}

// wsMessages parses a recorded WebSocket byte stream after the HTTP upgrade into its data messages,
// unmasking client frames. It is a test reader for well-formed streams, not a general parser.
func wsMessages(t testing.TB, stream []byte) [][]byte {
	t.Helper()
	i := bytes.Index(stream, []byte("\r\n\r\n"))
	if i < 0 {
		t.Fatal("no HTTP upgrade in the capture")
	}
	b := stream[i+4:]
	var msgs [][]byte
	var cur []byte
	for len(b) >= 2 {
		fin, op := b[0]&0x80 != 0, b[0]&0x0f
		masked, n := b[1]&0x80 != 0, uint64(b[1]&0x7f)
		b = b[2:]
		switch n {
		case 126:
			n, b = uint64(b[0])<<8|uint64(b[1]), b[2:]
		case 127:
			n = 0
			for _, x := range b[:8] {
				n = n<<8 | uint64(x)
			}
			b = b[8:]
		}
		var mask []byte
		if masked {
			mask, b = b[:4], b[4:]
		}
		if uint64(len(b)) < n {
			break // the capture ends mid-frame
		}
		payload := bytes.Clone(b[:n])
		b = b[n:]
		for j := range payload {
			if masked {
				payload[j] ^= mask[j%4]
			}
		}
		if op >= 8 { // control frame
			continue
		}
		cur = append(cur, payload...)
		if fin {
			msgs = append(msgs, cur)
			cur = nil
		}
	}
	return msgs
}

// dial connects a client with a fresh machine key to s.
func dial(t testing.TB, s *testServer, opts DialOptions) *Client {
	t.Helper()
	if opts.ServerURL == "" {
		opts.ServerURL = s.url
	}
	if opts.MachineKey.IsZero() {
		opts.MachineKey = key.NewPrivate()
	}
	opts.Logf = t.Logf
	c, err := Dial(context.Background(), opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
