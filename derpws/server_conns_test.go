//go:build !js

package derpws

import (
	"context"
	"strings"
	"testing"

	"tsconnect/internal/eventually"
	"tsconnect/internal/leakcheck"
	"tsconnect/key"
)

// TestConnectionFloodIsCapped: with MaxConns connections open (handshaking or connected) the
// relay answers the next upgrade 503 naming the limit, and admits again once one leaves.
func TestConnectionFloodIsCapped(t *testing.T) {
	leakcheck.Check(t)
	r := newRelay(t, &ServerOptions{MaxConns: 3})
	var open []*rawConn
	for range 3 {
		rc := dialRaw(t, r.url)
		rc.login(key.NewPrivate())
		open = append(open, rc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if _, _, err := dialUpgrade(ctx, r.url); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("fourth connection: %v; want a 503", err)
	}
	if r.m.connsRefused.Load() == 0 {
		t.Fatal("refusal not counted")
	}
	open[0].nc.Close()
	eventually.True(t, "a free slot", func() bool {
		r.mu.RLock()
		defer r.mu.RUnlock()
		return len(r.conns) < 3
	})
	dialRaw(t, r.url).login(key.NewPrivate())
}

// TestReconnectStormEvictsOnlyItsOwnKey: a client reconnecting over and over with one key
// replaces only that key's connection (newest wins); other clients stay connected and keep
// exchanging packets.
func TestReconnectStormEvictsOnlyItsOwnKey(t *testing.T) {
	leakcheck.Check(t)
	r := newRelay(t, nil)
	a, _ := newClient(t, r.url, false)
	b, _ := newClient(t, r.url, true)
	b.ensureStarted()
	eventually.True(t, "b connected", func() bool { return r.Stats(b.PublicKey()).Connections == 1 })
	storm := key.NewPrivate()
	for i := range 50 {
		rc := dialRaw(t, r.url)
		rc.login(storm)
		a.Send(b.PublicKey(), []byte{byte(i)})
		if _, got := recv(t, b); got[0] != byte(i) {
			t.Fatalf("packet %d arrived as %d", i, got[0])
		}
	}
	if sa, sb := r.Stats(a.PublicKey()), r.Stats(b.PublicKey()); sa.Connections != 1 || sb.Connections != 1 {
		t.Fatalf("bystanders reconnected: a=%+v b=%+v", sa, sb)
	}
	eventually.True(t, "one live connection for the storm key", func() bool {
		r.mu.RLock()
		defer r.mu.RUnlock()
		n := 0
		for _, c := range r.conns {
			if c != nil && c.key == storm.Public() {
				n++
			}
		}
		return n == 1
	})
}

// TestFreshKeyFloodKeepsCountersBounded: connecting with ever new keys does not grow the
// relay's per-key counters past maxStatsKeys plus the keys connected; live keys keep theirs.
func TestFreshKeyFloodKeepsCountersBounded(t *testing.T) {
	leakcheck.Check(t)
	old := maxStatsKeys
	maxStatsKeys = 5
	t.Cleanup(func() { maxStatsKeys = old })
	r := newRelay(t, nil)
	live := dialRaw(t, r.url)
	lk := key.NewPrivate()
	live.login(lk)
	for range 30 {
		rc := dialRaw(t, r.url)
		rc.login(key.NewPrivate())
		rc.nc.Close()
		eventually.True(t, "the connection gone", func() bool {
			r.mu.RLock()
			defer r.mu.RUnlock()
			return len(r.clients) == 1
		})
	}
	r.mu.RLock()
	n := len(r.stats)
	r.mu.RUnlock()
	if n > maxStatsKeys+2 {
		t.Fatalf("%d keys' counters kept, want at most %d", n, maxStatsKeys+2)
	}
	if s := r.Stats(lk.Public()); s.Connections != 1 {
		t.Fatalf("the live key lost its counters: %+v", s)
	}
}
