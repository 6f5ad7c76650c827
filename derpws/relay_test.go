//go:build !js

package derpws

import (
	"bytes"
	"fmt"
	"testing"

	"tsconnect/internal/eventually"
	"tsconnect/internal/leakcheck"
	"tsconnect/key"
)

// TestExchange moves packets both ways between two clients of one relay over each transport.
func TestExchange(t *testing.T) {
	for _, tc := range []struct {
		name string
		wsA  bool
		wsB  bool
	}{
		{"upgrade", false, false},
		{"websocket", true, true},
		{"mixed", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakcheck.Check(t)
			r := newRelay(t, nil)
			a, _ := newClient(t, r.url, tc.wsA)
			b, _ := newClient(t, r.url, tc.wsB)
			ak, bk := a.PublicKey(), b.PublicKey()
			// b must be connected before a's packets can reach it.
			b.ensureStarted()
			eventually.True(t, "b connected", func() bool { return r.Stats(bk).Connections == 1 })
			const n = 200
			for i := range n {
				msg := []byte(fmt.Sprintf("a→b %d", i))
				if err := a.Send(bk, msg); err != nil {
					t.Fatal(err)
				}
				src, got := recv(t, b)
				if src != ak || !bytes.Equal(got, msg) {
					t.Fatalf("b got %q from %s, want %q from %s", got, src.ShortString(), msg, ak.ShortString())
				}
				reply := []byte(fmt.Sprintf("b→a %d", i))
				if err := b.Send(ak, reply); err != nil {
					t.Fatal(err)
				}
				src, got = recv(t, a)
				if src != bk || !bytes.Equal(got, reply) {
					t.Fatalf("a got %q from %s, want %q", got, src.ShortString(), reply)
				}
			}
			sa, sb := r.Stats(ak), r.Stats(bk)
			if sa.PacketsIn != n || sa.PacketsOut != n || sb.PacketsIn != n || sb.PacketsOut != n {
				t.Errorf("relay counters a=%+v b=%+v, want %d in and out each", sa, sb, n)
			}
			if ca := a.Stats(); ca.PacketsSent != n || ca.PacketsReceived != n || ca.Connects != 1 {
				t.Errorf("client a counters %+v", ca)
			}
		})
	}
}

// TestLargePacket sends a packet of the largest size through the WebSocket byte stream.
func TestLargePacket(t *testing.T) {
	leakcheck.Check(t)
	r := newRelay(t, nil)
	a, _ := newClient(t, r.url, true)
	b, _ := newClient(t, r.url, true)
	b.ensureStarted()
	eventually.True(t, "b connected", func() bool { return r.Stats(b.PublicKey()).Connections == 1 })
	big := bytes.Repeat([]byte("0123456789abcdef"), MaxPacketSize/16)
	a.Send(b.PublicKey(), big)
	a.Send(b.PublicKey(), []byte("small"))
	if _, got := recv(t, b); !bytes.Equal(got, big) {
		t.Fatalf("big packet mangled: %d bytes", len(got))
	}
	if _, got := recv(t, b); string(got) != "small" {
		t.Fatalf("got %q", got)
	}
	if err := a.Send(b.PublicKey(), make([]byte, MaxPacketSize+1)); err == nil {
		t.Fatal("Send of an oversized packet succeeded")
	}
}

// TestCannotSpoofSource: the relay stamps the authenticated key whatever the sender puts in
// frames; a mesh-only ForwardPacket with a forged source from a plain client closes its
// connection and is never delivered.
func TestCannotSpoofSource(t *testing.T) {
	leakcheck.Check(t)
	r := newRelay(t, nil)
	victim, mallory := key.NewPrivate(), key.NewPrivate()
	b, _ := newClient(t, r.url, false)
	b.ensureStarted()
	eventually.True(t, "b connected", func() bool { return r.Stats(b.PublicKey()).Connections == 1 })

	rc := dialRaw(t, r.url)
	rc.login(mallory)
	bk, vk := b.PublicKey(), victim.Public()
	rc.write(FrameForwardPacket, vk[:], bk[:], []byte("forged"))
	rc.expectClosed()
	rc = dialRaw(t, r.url)
	rc.login(mallory)
	rc.write(FrameSendPacket, bk[:], []byte("honest"))
	src, got := recv(t, b)
	if string(got) != "honest" || src != mallory.Public() {
		t.Fatalf("b got %q from %s; want only the honest packet from mallory %s", got, src.ShortString(), mallory.Public().ShortString())
	}
	if s := r.Stats(vk); s != (ClientStats{}) {
		t.Fatalf("victim key has counters %+v", s)
	}
}

// TestBadClientInfo: a ClientInfo whose box does not open with the claimed key ends the connection.
func TestBadClientInfo(t *testing.T) {
	leakcheck.Check(t)
	r := newRelay(t, nil)
	claimed, real := key.NewPrivate(), key.NewPrivate()
	rc := dialRaw(t, r.url)
	// Sealed by real, but claiming to be claimed.
	ci, err := clientInfoPayload(real, rc.srv, &ClientInfo{Version: ProtocolVersion})
	if err != nil {
		t.Fatal(err)
	}
	cp := claimed.Public()
	copy(ci, cp[:])
	rc.write(FrameClientInfo, ci)
	if seen := rc.expectClosed(); len(seen) != 0 {
		t.Fatalf("server sent %v before closing; want nothing", seen)
	}
	if s := r.Stats(cp); s.Connections != 0 {
		t.Fatalf("forged key connected: %+v", s)
	}
}

// TestPeerGone covers both reasons: an unknown destination, and a sender that leaves.
func TestPeerGone(t *testing.T) {
	leakcheck.Check(t)
	r := newRelay(t, nil)
	a, aev := newClient(t, r.url, false)
	b, bev := newClient(t, r.url, true)
	nobody := key.NewPrivate().Public()
	b.ensureStarted()
	eventually.True(t, "b connected", func() bool { return r.Stats(b.PublicKey()).Connections == 1 })

	a.Send(nobody, []byte("hello?"))
	want := fmt.Sprintf("%s %d", nobody.ShortString(), PeerGoneNotHere)
	aev.waitFor(t, "PeerGone(not here)", func(e *events) bool { return contains(e.gone, want) })

	a.Send(b.PublicKey(), []byte("hi"))
	recv(t, b)
	ak := a.PublicKey()
	a.Close()
	want = fmt.Sprintf("%s %d", ak.ShortString(), PeerGoneDisconnected)
	bev.waitFor(t, "PeerGone(disconnected)", func(e *events) bool { return contains(e.gone, want) })
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
