//go:build !js

package derpws

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"tsconnect/key"
)

// hangGuard bounds waits that only end if the code works; it is not a speed assertion.
const hangGuard = 20 * time.Second

// relay is a Server behind an httptest server on loopback.
type relay struct {
	*Server
	hs  *httptest.Server
	url string // http://127.0.0.1:port/derp
}

func newRelay(t *testing.T, opts *ServerOptions) *relay {
	t.Helper()
	if opts == nil {
		opts = &ServerOptions{}
	}
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	s := NewServer(key.NewPrivate(), opts)
	hs := httptest.NewServer(mux(s))
	r := &relay{Server: s, hs: hs, url: hs.URL + "/derp"}
	t.Cleanup(r.close)
	return r
}

func (r *relay) close() {
	r.Server.Close()
	r.hs.Close()
}

// serveOn serves a new relay with opts on ln (a relay restarted on the same address, by hand).
func serveOn(ln net.Listener, opts *ServerOptions) (*Server, *http.Server) {
	s := NewServer(key.NewPrivate(), opts)
	hs := &http.Server{Handler: mux(s)}
	go hs.Serve(ln)
	return s, hs
}

func mux(s *Server) *http.ServeMux {
	m := http.NewServeMux()
	m.Handle("/derp", s)
	m.Handle("/derp/", s)
	return m
}

// events collects a client's hook calls.
type events struct {
	mu       sync.Mutex
	gone     []string // "key reason"
	health   []string
	connects int
	changed  chan struct{}
}

func newEvents() *events { return &events{changed: make(chan struct{}, 1)} }

func (e *events) note(f func()) {
	e.mu.Lock()
	f()
	e.mu.Unlock()
	select {
	case e.changed <- struct{}{}:
	default:
	}
}

// waitFor blocks until cond (run under the lock) holds.
func (e *events) waitFor(t *testing.T, what string, cond func(e *events) bool) {
	t.Helper()
	timer := time.NewTimer(hangGuard)
	defer timer.Stop()
	for {
		e.mu.Lock()
		ok := cond(e)
		e.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-e.changed:
		case <-timer.C:
			e.mu.Lock()
			defer e.mu.Unlock()
			t.Fatalf("never saw %s; gone=%q health=%q connects=%d", what, e.gone, e.health, e.connects)
		}
	}
}

// newClient returns a client with hooks recorded in the returned events; closed at cleanup.
func newClient(t *testing.T, url string, ws bool) (*Client, *events) {
	t.Helper()
	return newClientKey(t, key.NewPrivate(), url, ws)
}

func newClientKey(t *testing.T, priv key.Private, url string, ws bool) (*Client, *events) {
	t.Helper()
	ev := newEvents()
	c := NewClient(priv, url, &ClientOptions{
		Logf:         func(f string, a ...any) { t.Logf("client %s: "+f, append([]any{priv.Public().ShortString()}, a...)...) },
		UseWebSocket: ws,
		OnPeerGone: func(k key.Public, reason byte) {
			ev.note(func() { ev.gone = append(ev.gone, fmt.Sprintf("%s %d", k.ShortString(), reason)) })
		},
		OnHealth:  func(s string) { ev.note(func() { ev.health = append(ev.health, s) }) },
		OnConnect: func() { ev.note(func() { ev.connects++ }) },
	})
	t.Cleanup(func() { c.Close() })
	return c, ev
}

// recv returns the next packet of c, failing the test if none comes.
func recv(t *testing.T, c *Client) (key.Public, []byte) {
	t.Helper()
	type res struct {
		k   key.Public
		b   []byte
		err error
	}
	ch := make(chan res, 1)
	go func() {
		k, b, err := c.Recv()
		ch <- res{k, b, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Recv: %v", r.err)
		}
		return r.k, r.b
	case <-time.After(hangGuard):
		t.Fatal("no packet arrived")
	}
	panic("unreachable")
}

// rawConn is a hand-driven DERP connection for tests that need to misbehave or look at frames.
type rawConn struct {
	t    *testing.T
	priv key.Private
	nc   net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	srv  key.Public
}

// dialRaw opens an upgrade connection and reads ServerKey, without sending ClientInfo.
func dialRaw(t *testing.T, url string) *rawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	nc, br, err := dialUpgrade(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	rc := &rawConn{t: t, nc: nc, br: br, bw: bufio.NewWriter(nc)}
	ft, b := rc.readFrame()
	if ft != FrameServerKey {
		t.Fatalf("first frame 0x%02x, want ServerKey", ft)
	}
	if rc.srv, err = parseServerKey(b); err != nil {
		t.Fatal(err)
	}
	return rc
}

// login sends a proper ClientInfo for priv and expects ServerInfo.
func (rc *rawConn) login(priv key.Private) {
	rc.t.Helper()
	rc.priv = priv
	ci, err := clientInfoPayload(priv, rc.srv, &ClientInfo{Version: ProtocolVersion, CanAckPings: true})
	if err != nil {
		rc.t.Fatal(err)
	}
	rc.write(FrameClientInfo, ci)
	ft, b := rc.readFrame()
	if ft != FrameServerInfo {
		rc.t.Fatalf("got frame 0x%02x %q, want ServerInfo", ft, b)
	}
	if _, err := parseServerInfo(b, priv, rc.srv); err != nil {
		rc.t.Fatal(err)
	}
}

func (rc *rawConn) write(ft FrameType, parts ...[]byte) {
	rc.t.Helper()
	if err := writeFrame(rc.bw, ft, parts...); err != nil {
		rc.t.Fatal(err)
	}
	if err := rc.bw.Flush(); err != nil {
		rc.t.Fatal(err)
	}
}

// readFrame reads one frame, failing on error.
func (rc *rawConn) readFrame() (FrameType, []byte) {
	rc.t.Helper()
	ft, b, err := rc.tryReadFrame()
	if err != nil {
		rc.t.Fatalf("reading a frame: %v", err)
	}
	return ft, b
}

func (rc *rawConn) tryReadFrame() (FrameType, []byte, error) {
	rc.nc.SetReadDeadline(time.Now().Add(hangGuard))
	ft, n, err := readFrameHeader(rc.br)
	if err != nil {
		return 0, nil, err
	}
	b, err := readSmallPayload(rc.br, n, nil)
	return ft, b, err
}

// readUntil reads frames until one of type ft, skipping KeepAlive and others.
func (rc *rawConn) readUntil(ft FrameType) []byte {
	rc.t.Helper()
	for {
		got, b := rc.readFrame()
		if got == ft {
			return b
		}
	}
}

// expectClosed reads until the server closes the connection.
func (rc *rawConn) expectClosed() []FrameType {
	rc.t.Helper()
	var seen []FrameType
	for {
		ft, _, err := rc.tryReadFrame()
		if err != nil {
			if strings.Contains(err.Error(), "timeout") {
				rc.t.Fatalf("connection still open after frames %v", seen)
			}
			return seen
		}
		seen = append(seen, ft)
	}
}

// newBenchHTTP serves s on loopback for benchmarks.
func newBenchHTTP(s *Server) *httptest.Server { return httptest.NewServer(mux(s)) }
