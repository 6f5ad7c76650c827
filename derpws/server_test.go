//go:build !js

package derpws

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"tsconnect/internal/eventually"
	"tsconnect/internal/leakcheck"
	"tsconnect/key"
)

// TestHTTPEndpoints checks probe, latency-check, the 426 answer and the 101 headers.
func TestHTTPEndpoints(t *testing.T) {
	leakcheck.Check(t)
	r := newRelay(t, nil)
	hc := r.hs.Client()
	defer hc.CloseIdleConnections()
	for _, p := range []string{"/derp/probe", "/derp/latency-check"} {
		resp, err := hc.Get(r.hs.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("GET %s: %s, CORS %q", p, resp.Status, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
	resp, err := hc.Get(r.url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("GET /derp without upgrade: %s, want 426", resp.Status)
	}

	// The upgrade answer, byte for byte in its headers.
	nc, err := net.Dial("tcp", r.hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	io.WriteString(nc, "GET /derp HTTP/1.1\r\nHost: x\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(nc)
	up, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := up.Header
	if up.StatusCode != 101 || h.Get("Upgrade") != "DERP" || h.Get("Connection") != "Upgrade" ||
		h.Get("Derp-Version") != "2" || h.Get("Derp-Public-Key") != r.PublicKey().String() {
		t.Errorf("upgrade answer %s %v", up.Status, h)
	}
	ft, _, err := readFrameHeader(br)
	if err != nil || ft != FrameServerKey {
		t.Fatalf("after 101: frame 0x%02x, %v; want ServerKey", ft, err)
	}
}

// TestFastStart: with Derp-Fast-Start the first bytes are the ServerKey frame, no 101.
func TestFastStart(t *testing.T) {
	leakcheck.Check(t)
	r := newRelay(t, nil)
	nc, err := net.Dial("tcp", r.hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	io.WriteString(nc, "GET /derp HTTP/1.1\r\nHost: x\r\nUpgrade: DERP\r\nConnection: Upgrade\r\nDerp-Fast-Start: 1\r\n\r\n")
	head := make([]byte, frameHeaderLen+len(magic)+KeyLen)
	if _, err := io.ReadFull(nc, head); err != nil {
		t.Fatal(err)
	}
	pub := r.PublicKey()
	want := append([]byte{byte(FrameServerKey), 0, 0, 0, 40}, append([]byte(magic), pub[:]...)...)
	if !bytes.Equal(head, want) {
		t.Fatalf("fast start sent\n%x\nwant\n%x", head, want)
	}
}

// TestPingAndUnknownFrames: a Ping is echoed in a Pong, and unknown frame types are skipped.
func TestPingAndUnknownFrames(t *testing.T) {
	leakcheck.Check(t)
	r := newRelay(t, nil)
	rc := dialRaw(t, r.url)
	rc.login(key.NewPrivate())
	rc.write(0x7f, []byte("a frame from the future"))
	rc.write(0x16, []byte{1, 2, 3})
	rc.write(FramePing, []byte("12345678"))
	if got := rc.readUntil(FramePong); string(got) != "12345678" {
		t.Fatalf("Pong %q", got)
	}
}

// TestKeepAlive: the relay sends KeepAlive frames on an idle connection.
func TestKeepAlive(t *testing.T) {
	leakcheck.Check(t)
	r := newRelay(t, &ServerOptions{KeepAlive: 20 * time.Millisecond})
	rc := dialRaw(t, r.url)
	rc.login(key.NewPrivate())
	for range 3 {
		if b := rc.readUntil(FrameKeepAlive); len(b) != 0 {
			t.Fatalf("KeepAlive payload %q", b)
		}
	}
}

// TestNewestWins: a second connection for a key takes over; the first is told and closed.
func TestNewestWins(t *testing.T) {
	leakcheck.Check(t)
	r := newRelay(t, nil)
	k := key.NewPrivate()
	first := dialRaw(t, r.url)
	first.login(k)
	second := dialRaw(t, r.url)
	second.login(k)

	seen := first.expectClosed()
	if len(seen) == 0 || seen[len(seen)-1] != FrameHealth {
		t.Errorf("old connection saw %v before closing; want a Health frame", seen)
	}
	sender, _ := newClient(t, r.url, false)
	sender.Send(k.Public(), []byte("to the newest"))
	b := second.readUntil(FrameRecvPacket)
	if string(b[KeyLen:]) != "to the newest" {
		t.Fatalf("newest got %q", b[KeyLen:])
	}
	if s := r.Stats(k.Public()); s.Connections != 2 || s.PacketsOut != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestSlowReceiver: a receiver that never reads gets drops counted on it, while a fast pair on
// the same relay loses nothing.
func TestSlowReceiver(t *testing.T) {
	leakcheck.Check(t)
	r := newRelay(t, nil)
	slowKey := key.NewPrivate()
	slow := dialRaw(t, r.url)
	slow.login(slowKey) // and never reads again

	flooder, _ := newClient(t, r.url, false)
	a, _ := newClient(t, r.url, false)
	b, _ := newClient(t, r.url, true)
	b.ensureStarted()
	eventually.True(t, "b connected", func() bool { return r.Stats(b.PublicKey()).Connections == 1 })

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		big := make([]byte, 32<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			flooder.Send(slowKey.Public(), big)
			time.Sleep(50 * time.Microsecond)
		}
	}()
	eventually.True(t, "drops on the slow receiver", func() bool { return r.Stats(slowKey.Public()).Drops > 0 })

	const n = 500
	for i := range n {
		a.Send(b.PublicKey(), []byte{byte(i)})
		if _, got := recv(t, b); got[0] != byte(i) {
			t.Fatalf("packet %d arrived as %d", i, got[0])
		}
		b.Send(a.PublicKey(), []byte{byte(i)})
		recv(t, a)
	}
	close(stop)
	wg.Wait()
	sa, sb, ss := r.Stats(a.PublicKey()), r.Stats(b.PublicKey()), r.Stats(slowKey.Public())
	if sa.Drops != 0 || sb.Drops != 0 || sa.PacketsOut != n || sb.PacketsOut != n {
		t.Errorf("fast pair: a=%+v b=%+v; want %d out and no drops", sa, sb, n)
	}
	if ss.Drops == 0 {
		t.Errorf("slow receiver: %+v; want drops", ss)
	}
	t.Logf("slow receiver %+v", ss)
}

// TestVerifyClient: a refused key gets a Health frame and no ServerInfo; the client reports it.
func TestVerifyClient(t *testing.T) {
	leakcheck.Check(t)
	allowed := key.NewPrivate()
	r := newRelay(t, &ServerOptions{VerifyClient: func(ctx context.Context, k key.Public) error {
		if k == allowed.Public() {
			return nil
		}
		return errors.New("not a registered node")
	}})
	rc := dialRaw(t, r.url)
	rc.login(allowed)

	refused := dialRaw(t, r.url)
	ci, _ := clientInfoPayload(key.NewPrivate(), refused.srv, &ClientInfo{Version: 2})
	refused.write(FrameClientInfo, ci)
	if seen := refused.expectClosed(); len(seen) != 1 || seen[0] != FrameHealth {
		t.Fatalf("refused connection saw %v; want just Health", seen)
	}

	c, ev := newClient(t, r.url, false)
	c.ensureStarted()
	ev.waitFor(t, "a refusal reported to OnHealth", func(e *events) bool {
		for _, h := range e.health {
			if strings.Contains(h, "does not admit") {
				return true
			}
		}
		return false
	})
	if s := c.Stats(); s.Connects != 0 {
		t.Fatalf("refused client connected: %+v", s)
	}
}

// TestClosePeer: ClosePeer drops a key's connection; with admission withdrawn it stays out.
func TestClosePeer(t *testing.T) {
	leakcheck.Check(t)
	var banned atomic.Bool
	r := newRelay(t, &ServerOptions{VerifyClient: func(ctx context.Context, k key.Public) error {
		if banned.Load() {
			return errors.New("deleted")
		}
		return nil
	}})
	c, ev := newClient(t, r.url, false)
	ck := c.PublicKey()
	c.ensureStarted()
	eventually.True(t, "connected", func() bool { return r.Stats(ck).Connections == 1 })

	r.ClosePeer(ck) // the client reconnects
	eventually.True(t, "reconnected", func() bool { return r.Stats(ck).Connections == 2 })

	banned.Store(true)
	r.ClosePeer(ck)
	ev.waitFor(t, "refusal after deletion", func(e *events) bool {
		return len(e.health) > 0 && strings.Contains(e.health[len(e.health)-1], "does not admit")
	})
	if r.lookup(ck) != nil {
		t.Fatal("deleted key still connected")
	}
}

// TestRestart: Close sends Restarting; the client reconnects to a new relay on the same address.
func TestRestart(t *testing.T) {
	leakcheck.Check(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	url := "http://" + addr + "/derp"
	serve := func(ln net.Listener) (*Server, *http.Server) { return serveOn(ln, &ServerOptions{Logf: t.Logf}) }
	s1, hs1 := serve(ln)

	// A raw connection sees the Restarting frame itself.
	rc := dialRaw(t, url)
	rc.login(key.NewPrivate())

	a, aev := newClient(t, url, false)
	b, _ := newClient(t, url, true)
	for _, c := range []*Client{a, b} {
		c.ensureStarted()
		eventually.True(t, "connected", func() bool { return s1.Stats(c.PublicKey()).Connections == 1 })
	}
	hs1.Close() // stop accepting; live (hijacked) connections stay
	s1.Close()
	b2 := rc.readUntil(FrameRestarting)
	if len(b2) != 8 || binary.BigEndian.Uint32(b2) != uint32(restartReconnectIn/time.Millisecond) {
		t.Fatalf("Restarting payload %x", b2)
	}

	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s2, hs2 := serve(ln2)
	defer func() { s2.Close(); hs2.Close() }()
	aev.waitFor(t, "second connect", func(e *events) bool { return e.connects == 2 })
	eventually.True(t, "b on the new relay", func() bool { return s2.Stats(b.PublicKey()).Connections == 1 })
	a.Send(b.PublicKey(), []byte("after restart"))
	if _, got := recv(t, b); string(got) != "after restart" {
		t.Fatalf("got %q", got)
	}
	if s := s2.Stats(a.PublicKey()); s.PacketsIn != 1 {
		t.Fatalf("new relay stats %+v", s)
	}
}

// TestWebSocketOriginAndSubprotocol: a page of any origin may connect (keys authenticate), but
// only with the derp subprotocol.
func TestWebSocketOriginAndSubprotocol(t *testing.T) {
	leakcheck.Check(t)
	r := newRelay(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	wc, _, err := websocket.Dial(ctx, r.url, &websocket.DialOptions{
		Subprotocols: []string{Subprotocol},
		HTTPHeader:   http.Header{"Origin": {"https://console.elsewhere.example"}},
	})
	if err != nil {
		t.Fatalf("cross-origin WebSocket refused: %v", err)
	}
	nc := newWSConn(wc)
	defer nc.Close()
	ft, _, err := readFrameHeader(bufio.NewReader(nc))
	if err != nil || ft != FrameServerKey {
		t.Fatalf("first frame 0x%02x %v", ft, err)
	}

	wc2, _, err := websocket.Dial(ctx, r.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer wc2.CloseNow()
	_, _, err = wc2.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("without subprotocol: %v, want a policy-violation close", err)
	}
}
