//go:build !js

package derpws

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/crypto/nacl/box"

	"tsconnect/internal/eventually"
	"tsconnect/internal/leakcheck"
	"tsconnect/key"
)

// logBuf collects a relay's log lines for tests.
type logBuf struct {
	t  *testing.T
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) logf(format string, args ...any) {
	l.t.Logf(format, args...)
	l.mu.Lock()
	fmt.Fprintf(&l.b, format+"\n", args...)
	l.mu.Unlock()
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func header(t FrameType, n uint32) []byte {
	b := []byte{byte(t), 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], n)
	return b
}

// alive checks that the relay still answers rc's Ping.
func (rc *rawConn) alive() {
	rc.t.Helper()
	rc.write(FramePing, []byte("stillup!"))
	for string(rc.readUntil(FramePong)) != "stillup!" {
	}
}

// TestHostileFramesAtEveryLimit sends every frame type a client can send at its limit, one byte
// past it, empty, truncated and stalled: frames within the limits work, every other one closes
// the sender's connection with a log line naming the problem, nothing hangs, and a bystander
// pair on the relay keeps exchanging packets throughout.
func TestHostileFramesAtEveryLimit(t *testing.T) {
	leakcheck.Check(t)
	lb := &logBuf{t: t}
	const frameTimeout = 300 * time.Millisecond
	r := newRelay(t, &ServerOptions{Logf: lb.logf, MeshKey: testMeshKey, FrameTimeout: frameTimeout})
	a, _ := newClient(t, r.url, false)
	b, _ := newClient(t, r.url, true)
	b.ensureStarted()
	eventually.True(t, "b connected", func() bool { return r.Stats(b.PublicKey()).Connections == 1 })
	bk := b.PublicKey()
	exchange := func(tag byte) {
		t.Helper()
		a.Send(bk, []byte{tag})
		if _, got := recv(t, b); !bytes.Equal(got, []byte{tag}) {
			t.Fatalf("bystander got %x, want %x", got, tag)
		}
	}
	big := make([]byte, MaxPacketSize)
	src := key.NewPrivate().Public()
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

	for i, tc := range []struct {
		name   string
		mesh   bool
		raw    []byte // written after the login
		closed bool   // the relay must close the connection
		log    string // with a log line containing this
	}{
		{"SendPacket at MaxPacketSize", false, frameBytes(FrameSendPacket, bk[:], big), false, ""},
		{"SendPacket empty packet", false, frameBytes(FrameSendPacket, bk[:]), false, ""},
		{"SendPacket one past MaxPacketSize", false, frameBytes(FrameSendPacket, bk[:], big, []byte{0}), true, "packet of 65537 bytes, limit 65536"},
		{"SendPacket zero length", false, header(FrameSendPacket, 0), true, "of 0 bytes is too short"},
		{"SendPacket shorter than a key", false, frameBytes(FrameSendPacket, bk[:31]), true, "of 31 bytes is too short"},
		{"frame over maxFrameLen", false, header(FrameSendPacket, maxFrameLen+1), true, "frame too long"},
		{"frame length 0xffffffff", false, header(0x7f, 0xffffffff), true, "frame too long"},
		{"unknown type at maxFrameLen", false, frameBytes(0x7f, make([]byte, maxFrameLen)), false, ""},
		{"unknown type empty", false, header(0x7f, 0), false, ""},
		{"Pong from a client", false, frameBytes(FramePong, []byte("12345678")), false, ""},
		{"second ClientInfo", false, frameBytes(FrameClientInfo, []byte("again")), false, ""},
		{"NotePreferred", false, frameBytes(FrameNotePreferred, []byte{1}), false, ""},
		{"NotePreferred empty", false, header(FrameNotePreferred, 0), true, "of 0 bytes, want exactly 1"},
		{"NotePreferred 2 bytes", false, frameBytes(FrameNotePreferred, []byte{1, 1}), true, "of 2 bytes, want exactly 1"},
		{"Ping at maxPingLen", false, frameBytes(FramePing, make([]byte, maxPingLen)), false, ""},
		{"Ping one past maxPingLen", false, frameBytes(FramePing, make([]byte, maxPingLen+1)), true, "of 1001 bytes, want 8 to 1000"},
		{"Ping 7 bytes", false, frameBytes(FramePing, make([]byte, 7)), true, "of 7 bytes, want 8 to 1000"},
		{"WatchConns from a plain client", false, frameBytes(FrameWatchConns), true, "without the mesh key"},
		{"ClosePeer from a plain client", false, frameBytes(FrameClosePeer, bk[:]), true, "without the mesh key"},
		{"ForwardPacket from a plain client", false, frameBytes(FrameForwardPacket, src[:], bk[:], []byte("x")), true, "without the mesh key"},
		{"mesh WatchConns with a body", true, frameBytes(FrameWatchConns, []byte{0}), true, "of 1 bytes, want 0"},
		{"mesh ClosePeer 31 bytes", true, frameBytes(FrameClosePeer, bk[:31]), true, "of 31 bytes, want 32"},
		{"mesh ClosePeer 33 bytes", true, frameBytes(FrameClosePeer, bk[:], []byte{0}), true, "of 33 bytes, want 32"},
		{"mesh ForwardPacket at MaxPacketSize", true, frameBytes(FrameForwardPacket, src[:], bk[:], big), false, ""},
		{"mesh ForwardPacket one past MaxPacketSize", true, frameBytes(FrameForwardPacket, src[:], bk[:], big, []byte{0}), true, "packet of 65537 bytes, limit 65536"},
		{"mesh ForwardPacket without a destination", true, frameBytes(FrameForwardPacket, src[:]), true, "of 32 bytes is too short"},
		{"stalled in a header", false, header(FrameSendPacket, 100)[:3], true, "not complete within"},
		{"stalled in a body", false, header(FrameSendPacket, 100), true, "not complete within"},
		{"stalled in a key", false, cat(header(FrameSendPacket, 100), bk[:10]), true, "not complete within"},
		{"stalled in a packet", false, cat(header(FrameSendPacket, 100), bk[:], []byte("part")), true, "not complete within"},
		{"stalled in a Ping", false, cat(header(FramePing, 8), []byte("1234")), true, "not complete within"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, r.url)
			if tc.mesh {
				if ft, _ := rc.loginMesh(key.NewPrivate(), testMeshKey); ft != FrameServerInfo {
					t.Fatalf("mesh login answered 0x%02x", ft)
				}
			} else {
				rc.login(key.NewPrivate())
			}
			before := len(lb.String())
			if _, err := rc.nc.Write(tc.raw); err != nil {
				t.Fatal(err)
			}
			if tc.closed {
				rc.expectClosed()
				eventually.True(t, "the log line", func() bool { return strings.Contains(lb.String()[before:], tc.log) })
			} else {
				rc.alive()
			}
			// Packets within the limits arrive whole; the bystander is served either way.
			if !tc.closed && bytes.HasPrefix(tc.raw, []byte{byte(FrameSendPacket)}) || tc.name == "mesh ForwardPacket at MaxPacketSize" {
				if _, got := recv(t, b); len(got) != len(tc.raw)-frameHeaderLen-KeyLen*(1+btoi(tc.mesh)) {
					t.Fatalf("delivered %d bytes", len(got))
				}
			}
			exchange(byte(i))
		})
	}
	if got := r.Stats(a.PublicKey()); got.Connections != 1 {
		t.Fatalf("bystander reconnected: %+v", got)
	}
	if r.m.badFrames.Load() == 0 || r.m.frameTimeouts.Load() != 5 {
		t.Fatalf("bad frames %d, frame timeouts %d (want 5)", r.m.badFrames.Load(), r.m.frameTimeouts.Load())
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestIdleBetweenFramesIsNotTimedOut: FrameTimeout bounds a frame in progress, never the quiet
// time between frames (stock clients send nothing while idle).
func TestIdleBetweenFramesIsNotTimedOut(t *testing.T) {
	leakcheck.Check(t)
	r := newRelay(t, &ServerOptions{FrameTimeout: 100 * time.Millisecond})
	rc := dialRaw(t, r.url)
	rc.login(key.NewPrivate())
	rc.alive()
	time.Sleep(400 * time.Millisecond)
	rc.alive()
}

// TestSlowlorisHandshakesDoNotBlockOthers: connections that stop inside the handshake (a partial
// ClientInfo) hold nothing others need; new clients connect and exchange meanwhile. An oversized
// or non-ClientInfo first frame is refused with a log line naming it.
func TestSlowlorisHandshakesDoNotBlockOthers(t *testing.T) {
	leakcheck.Check(t)
	lb := &logBuf{t: t}
	r := newRelay(t, &ServerOptions{Logf: lb.logf})
	for range 20 {
		rc := dialRaw(t, r.url)
		rc.nc.Write(header(FrameClientInfo, 200)[:4])
	}
	a, _ := newClient(t, r.url, false)
	b, _ := newClient(t, r.url, true)
	b.ensureStarted()
	eventually.True(t, "b connected", func() bool { return r.Stats(b.PublicKey()).Connections == 1 })
	a.Send(b.PublicKey(), []byte("through"))
	if _, got := recv(t, b); string(got) != "through" {
		t.Fatalf("got %q", got)
	}
	for _, tc := range []struct {
		raw []byte
		log string
	}{
		{frameBytes(FrameClientInfo, make([]byte, maxClientInfoLen+1)), "ClientInfo frame of 8193 bytes, limit 8192"},
		{frameBytes(FrameSendPacket, make([]byte, 40)), "first client frame is of type 0x04, not ClientInfo"},
		{header(FrameClientInfo, 0), "ClientInfo frame shorter than a key"},
	} {
		rc := dialRaw(t, r.url)
		rc.nc.Write(tc.raw)
		rc.expectClosed()
		eventually.True(t, tc.log, func() bool { return strings.Contains(lb.String(), tc.log) })
	}
}

// TestHostileClientInfoJSON: a ClientInfo whose sealed JSON is malformed, full of terminal
// escapes or as large as the frame allows is refused or admitted without harm, and what the
// client wrote reaches the log only escaped.
func TestHostileClientInfoJSON(t *testing.T) {
	leakcheck.Check(t)
	lb := &logBuf{t: t}
	r := newRelay(t, &ServerOptions{Logf: lb.logf})
	send := func(priv key.Private, rc *rawConn, msg []byte) {
		var nonce [nonceLen]byte
		pub := priv.Public()
		sealed := boxSeal(nonce, msg, [32]byte(rc.srv), [32]byte(priv))
		rc.write(FrameClientInfo, pub[:], sealed)
	}
	rc := dialRaw(t, r.url)
	send(key.NewPrivate(), rc, []byte("{\"version\": \x1b[31m"))
	rc.expectClosed()
	eventually.True(t, "the JSON refusal", func() bool { return strings.Contains(lb.String(), "ClientInfo JSON") })
	if strings.Contains(lb.String(), "\x1b") {
		t.Fatal("a terminal escape from the client reached the log")
	}
	// Large but within the limit: admitted; the name is never logged.
	rc = dialRaw(t, r.url)
	priv := key.NewPrivate()
	send(priv, rc, []byte(`{"version":2,"AppName":"`+strings.Repeat(`\u001b]0;x\u0007`, 500)+`"}`))
	if ft, _ := rc.readFrame(); ft != FrameServerInfo {
		t.Fatalf("answered 0x%02x", ft)
	}
	rc.alive()
}

// TestWebSocketStalledFrameIsClosed: FrameTimeout holds over the WebSocket transport too.
func TestWebSocketStalledFrameIsClosed(t *testing.T) {
	leakcheck.Check(t)
	lb := &logBuf{t: t}
	r := newRelay(t, &ServerOptions{Logf: lb.logf, FrameTimeout: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	wc, _, err := websocket.Dial(ctx, r.url, &websocket.DialOptions{Subprotocols: []string{Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	nc := newWSConn(wc)
	defer nc.Close()
	rc := &rawConn{t: t, nc: nc, br: bufio.NewReader(nc), bw: bufio.NewWriter(nc)}
	ft, b := rc.readFrame()
	if ft != FrameServerKey {
		t.Fatalf("first frame 0x%02x", ft)
	}
	if rc.srv, err = parseServerKey(b); err != nil {
		t.Fatal(err)
	}
	rc.login(key.NewPrivate())
	rc.alive()
	nc.Write(header(FrameSendPacket, 100))
	rc.expectClosed()
	eventually.True(t, "the log line", func() bool { return strings.Contains(lb.String(), "not complete within") })
}

// TestForgedKeyEncodingsAreRefused: a client cannot take a second identity by claiming its key
// with bit 255 set (the same curve point, so its box opens), nor any identity at all by
// claiming a low-order key such as all zeros (whose shared secret anyone can compute).
func TestForgedKeyEncodingsAreRefused(t *testing.T) {
	leakcheck.Check(t)
	lb := &logBuf{t: t}
	r := newRelay(t, &ServerOptions{Logf: lb.logf})
	real := key.NewPrivate()

	rc := dialRaw(t, r.url)
	ci, err := clientInfoPayload(real, rc.srv, &ClientInfo{Version: ProtocolVersion})
	if err != nil {
		t.Fatal(err)
	}
	ci[31] |= 0x80
	rc.write(FrameClientInfo, ci)
	if seen := rc.expectClosed(); len(seen) != 0 {
		t.Fatalf("bit-255 twin of a key answered %v", seen)
	}

	rc = dialRaw(t, r.url)
	var zero, shared [32]byte
	anyPriv := [32]byte(key.NewPrivate())
	box.Precompute(&shared, &zero, &anyPriv)
	var nonce [nonceLen]byte
	sealed := box.SealAfterPrecomputation(nonce[:], []byte(`{"version":2}`), &nonce, &shared)
	rc.write(FrameClientInfo, zero[:], sealed)
	if seen := rc.expectClosed(); len(seen) != 0 {
		t.Fatalf("the all-zero key answered %v", seen)
	}
	eventually.True(t, "both refusals logged", func() bool {
		return strings.Contains(lb.String(), "not a canonical") && strings.Contains(lb.String(), "low-order")
	})
	if r.m.clients.Load() != 0 {
		t.Fatal("a forged key is connected")
	}
}
