//go:build !js

package derpws

import (
	"bytes"
	"strings"
	"testing"

	"tsconnect/internal/eventually"
	"tsconnect/internal/leakcheck"
	"tsconnect/internal/metrics/metricstest"
	"tsconnect/key"
)

const testMeshKey = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// loginMesh sends a ClientInfo carrying meshKey and returns the first frame answered.
func (rc *rawConn) loginMesh(priv key.Private, meshKey string) (FrameType, []byte) {
	rc.t.Helper()
	rc.priv = priv
	ci, err := clientInfoPayload(priv, rc.srv, &ClientInfo{Version: ProtocolVersion, MeshKey: meshKey})
	if err != nil {
		rc.t.Fatal(err)
	}
	rc.write(FrameClientInfo, ci)
	return rc.readFrame()
}

// TestMeshTwoRelays: clients of two meshed relays reach each other, source keys intact, and
// a relay forgets a peer's client once it leaves.
func TestMeshTwoRelays(t *testing.T) {
	leakcheck.Check(t)
	a := newRelay(t, &ServerOptions{MeshKey: testMeshKey})
	b := newRelay(t, &ServerOptions{MeshKey: testMeshKey})
	if err := a.MeshWith(b.url); err != nil {
		t.Fatal(err)
	}
	if err := b.MeshWith(a.url); err != nil {
		t.Fatal(err)
	}
	x, _ := newClient(t, a.url, false)
	y, _ := newClient(t, b.url, true)
	x.ensureStarted()
	y.ensureStarted()
	xk, yk := x.PublicKey(), y.PublicKey()
	eventually.True(t, "a learns y from b", func() bool { _, via := a.route(yk); return via != nil })
	eventually.True(t, "b learns x from a", func() bool { _, via := b.route(xk); return via != nil })

	for i := range 50 {
		msg := []byte{byte(i), 'x'}
		x.Send(yk, msg)
		if src, got := recv(t, y); src != xk || !bytes.Equal(got, msg) {
			t.Fatalf("y got %q from %s, want %q from x", got, src.ShortString(), msg)
		}
		reply := []byte{byte(i), 'y'}
		y.Send(xk, reply)
		if src, got := recv(t, x); src != yk || !bytes.Equal(got, reply) {
			t.Fatalf("x got %q from %s, want %q from y", got, src.ShortString(), reply)
		}
	}
	if a.m.forwardedOut.Load() < 50 || b.m.forwardedIn.Load() < 50 {
		t.Errorf("a forwarded %d, b received %d forwarded packets; want ≥ 50 each", a.m.forwardedOut.Load(), b.m.forwardedIn.Load())
	}
	y.Close()
	eventually.True(t, "a forgets y", func() bool { _, via := a.route(yk); return via == nil })

	m := metricstest.Of(t, a.Collector())
	if m["derp_packets_forwarded_out_total"] < 50 || !m.Has(`derp_packets_dropped_total{reason="queue_full"}`) {
		t.Errorf("metrics: %v", m)
	}
}

// TestMeshFramesNeedKey: WatchConns, ForwardPacket and ClosePeer from a client without the
// mesh key close its connection; a wrong mesh key is refused in the handshake.
func TestMeshFramesNeedKey(t *testing.T) {
	leakcheck.Check(t)
	r := newRelay(t, &ServerOptions{MeshKey: testMeshKey})
	victim, _ := newClient(t, r.url, false)
	victim.ensureStarted()
	eventually.True(t, "victim connected", func() bool { return r.Stats(victim.PublicKey()).Connections == 1 })
	vk := victim.PublicKey()
	src := key.NewPrivate().Public()
	for _, tc := range []struct {
		name  string
		ft    FrameType
		parts [][]byte
	}{
		{"WatchConns", FrameWatchConns, nil},
		{"ClosePeer", FrameClosePeer, [][]byte{vk[:]}},
		{"ForwardPacket", FrameForwardPacket, [][]byte{src[:], vk[:], []byte("spoof")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, r.url)
			rc.login(key.NewPrivate())
			rc.write(tc.ft, tc.parts...)
			for _, ft := range rc.expectClosed() {
				if ft == FramePeerPresent {
					t.Error("got PeerPresent without the mesh key")
				}
			}
		})
	}
	if got := r.Stats(vk); got.Connections != 1 || got.PacketsOut != 0 {
		t.Errorf("victim was touched: %+v", got)
	}
	rc := dialRaw(t, r.url)
	if ft, b := rc.loginMesh(key.NewPrivate(), strings.Repeat("f", 64)); ft != FrameHealth || !strings.Contains(string(b), "mesh key") {
		t.Errorf("wrong mesh key answered 0x%02x %q, want a Health frame naming the mesh key", ft, b)
	}
	rc.expectClosed()
	if r.m.meshRefused.Load() != 4 {
		t.Errorf("mesh refusals counted %d, want 4", r.m.meshRefused.Load())
	}
}

// TestMeshWatchForwardClose drives the mesh frames by hand as a peer relay would.
func TestMeshWatchForwardClose(t *testing.T) {
	leakcheck.Check(t)
	r := newRelay(t, &ServerOptions{MeshKey: testMeshKey, VerifyClient: nil})
	// early is a raw client: a real one reconnects at once after ClosePeer, and when its new
	// connection wins before the old one is gone the watcher sees no PeerGone.
	early := dialRaw(t, r.url)
	early.login(key.NewPrivate())
	ek := early.priv.Public()
	eventually.True(t, "early connected", func() bool { return r.Stats(ek).Connections == 1 })

	rc := dialRaw(t, r.url)
	if ft, b := rc.loginMesh(key.NewPrivate(), testMeshKey); ft != FrameServerInfo {
		t.Fatalf("mesh login answered 0x%02x %q", ft, b)
	}
	rc.write(FrameWatchConns)
	if b := rc.readUntil(FramePeerPresent); key.Public(b[:KeyLen]) != ek || len(b) < KeyLen+18 {
		t.Fatalf("first PeerPresent %x, want early's key with address", b)
	}
	late, _ := newClient(t, r.url, true)
	late.ensureStarted()
	if b := rc.readUntil(FramePeerPresent); key.Public(b[:KeyLen]) != late.PublicKey() {
		t.Fatalf("PeerPresent for %x, want late", b[:KeyLen])
	}
	// A forwarded packet reaches the local client stamped with the forwarded source key.
	src := key.NewPrivate().Public()
	lk := late.PublicKey()
	rc.write(FrameForwardPacket, src[:], lk[:], []byte("via mesh"))
	if from, got := recv(t, late); from != src || string(got) != "via mesh" {
		t.Fatalf("late got %q from %s", got, from.ShortString())
	}
	// ClosePeer drops early's connection; the watcher then sees PeerGone for it.
	rc.write(FrameClosePeer, ek[:])
	early.expectClosed()
	if b := rc.readUntil(FramePeerGone); key.Public(b[:KeyLen]) != ek {
		t.Fatalf("PeerGone for %x, want early", b[:KeyLen])
	}
}
