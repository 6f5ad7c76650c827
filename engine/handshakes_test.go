package engine

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/device"

	"tsconnect/derpbind"
	"tsconnect/derpbind/memrelay"
	"tsconnect/key"
)

// logLines collects log lines.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logf(format string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *logLines) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

// initiation is a handshake initiation to dst with a valid MAC1 (anyone who knows dst's
// public key can make one) and garbage inside: wireguard-go does its Curve25519 work on
// it before it finds it invalid.
func initiation(dst key.Public) []byte {
	msg := make([]byte, device.MessageInitiationSize)
	crand.Read(msg[4:])
	binary.LittleEndian.PutUint32(msg[:4], device.MessageInitiationType)
	var g device.CookieGenerator
	g.Init(device.NoisePublicKey(dst))
	g.AddMacs(msg)
	return msg
}

// TestHandshakeFloodIsCappedPerPeer: a peer flooding handshake initiations gets at most
// HandshakeBurst + HandshakeRate per second processed by WireGuard (counted from
// WireGuard's own log of each one it worked on), a sender that is no peer gets none, and
// meanwhile another peer connects and talks as usual.
func TestHandshakeFloodIsCappedPerPeer(t *testing.T) {
	hub := &memrelay.Hub{}
	var logs logLines
	priv := key.NewPrivate()
	relay := hub.Client(priv.Public())
	e, err := New(Config{PrivateKey: priv, Bind: derpbind.New(relay, t.Logf), Logf: logs.logf, VerboseWireGuard: true})
	if err != nil {
		t.Fatal(err)
	}
	a := &node{Engine: e, hub: hub, relay: relay, v4: netip.MustParseAddr("100.64.0.1"), v6: netip.MustParseAddr("fd7a:115c:a1e0::1")}
	if err := e.SetAddresses([]netip.Prefix{netip.PrefixFrom(a.v4, 32), netip.PrefixFrom(a.v6, 128)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	b := newNode(t, hub, 2)
	t.Cleanup(b.close)

	peerKey, strangerKey := key.NewPrivate().Public(), key.NewPrivate().Public()
	flooder, stranger := hub.Client(peerKey), hub.Client(strangerKey)
	defer flooder.Close()
	defer stranger.Close()
	mustSetPeers(t, a, b.peer(), Peer{Key: peerKey, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("100.64.0.9/32")}})
	mustSetPeers(t, b, a.peer())
	l, err := b.ListenTCP(22)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go echoServer(l)

	const flood = 2000
	start := time.Now()
	for i := range flood {
		flooder.Send(a.PublicKey(), initiation(a.PublicKey()))
		stranger.Send(a.PublicKey(), initiation(a.PublicKey()))
		if i%20 == 0 {
			time.Sleep(time.Millisecond) // paced: the handshake queue never counts as under load
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if got, err := roundTrip(ctx, a, "tcp", netip.AddrPortFrom(b.v4, 22), "hello"); err != nil || got != "100.64.0.1 hello" {
		t.Fatalf("the other peer during the flood: %q, %v", got, err)
	}
	elapsed := time.Since(start)
	time.Sleep(300 * time.Millisecond) // let WireGuard finish what it was given
	worked := logs.count("Received invalid initiation message from " + peerKey.String())
	limit := HandshakeBurst + int(elapsed.Seconds()*HandshakeRate) + 2
	t.Logf("flood of %d initiations in %v: %d processed for the peer, %d for the stranger, %d dropped", flood, elapsed.Round(time.Millisecond),
		worked, logs.count("Received invalid initiation message from "+strangerKey.String()), a.HandshakesDropped())
	if worked > limit {
		t.Errorf("WireGuard worked on %d of the peer's %d initiations in %v; want at most %d", worked, flood, elapsed, limit)
	}
	if n := logs.count("Received invalid initiation message from " + strangerKey.String()); n != 0 {
		t.Errorf("WireGuard worked on %d initiations of a sender that is no peer; want 0", n)
	}
	if d := a.HandshakesDropped(); d < uint64(2*flood-limit) {
		t.Errorf("HandshakesDropped = %d; want at least %d", d, 2*flood-limit)
	}
}
