//go:build !js

package derpws

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"tsconnect/internal/eventually"
	"tsconnect/internal/leakcheck"
	"tsconnect/key"
)

// TestQueuedWhileDownOnlyStaleDropped: packets sent while the relay is down wait in the queue;
// once the relay is back, those older than staleAfter are gone and the fresh ones arrive (a
// transport's latest retransmission need not wait for the next one).
func TestQueuedWhileDownOnlyStaleDropped(t *testing.T) {
	leakcheck.Check(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	url := "http://" + addr + "/derp"
	var admitA atomic.Bool
	var aKey key.Public
	serve := func(ln net.Listener) (*Server, *http.Server) {
		return serveOn(ln, &ServerOptions{Logf: t.Logf, VerifyClient: func(_ context.Context, k key.Public) error {
			if k == aKey && !admitA.Load() {
				return errors.New("not yet")
			}
			return nil
		}})
	}
	a, _ := newClient(t, url, false)
	aKey = a.PublicKey()
	admitA.Store(true)
	s1, hs1 := serve(ln)
	a.ensureStarted()
	eventually.True(t, "a connected", func() bool { return s1.Stats(aKey).Connections == 1 })
	hs1.Close()
	s1.Close() // the relay goes away (its Restarting frame asks for a retry in restartReconnectIn)
	eventually.True(t, "a disconnected", func() bool { return !a.up.Load() })

	b := key.NewPrivate()
	a.Send(b.Public(), []byte("stale"))
	time.Sleep(staleAfter + 500*time.Millisecond)
	a.Send(b.Public(), []byte("fresh"))

	admitA.Store(false) // b first, so that nothing of a's is dropped for want of its peer
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s2, hs2 := serve(ln2)
	defer func() { s2.Close(); hs2.Close() }()
	rc := dialRaw(t, url)
	rc.login(b)
	admitA.Store(true)
	for {
		ft, body := rc.readFrame()
		if ft != FrameRecvPacket {
			continue
		}
		if got := string(body[32:]); got != "fresh" {
			t.Fatalf("first packet after the outage %q, want the fresh one", got)
		}
		break
	}
	if d := a.Stats().SendDrops; d != 1 {
		t.Fatalf("%d packets dropped, want the stale one", d)
	}
}
