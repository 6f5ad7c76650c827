//go:build js && e2edial

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"hash"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// These tests run inside node (GOOS=js, -tags e2edial) against real nodes through the real
// relay: e2e's TestWasmDial starts the network, sets E2E_* and runs them. They drive IPN.Dial
// as the npm package's Worker does: writes within the write credit, reads acknowledged.

func dialEnv(t *testing.T, name string) string {
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run through e2e's TestWasmDial", name)
	}
	return v
}

func dialPort(t *testing.T, name string) int {
	n, err := strconv.Atoi(dialEnv(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func joinForDial(t *testing.T) *IPN {
	p, err := NewIPN(Config{ControlURL: dialEnv(t, "E2E_CONTROL_URL"), AuthKey: dialEnv(t, "E2E_AUTH_KEY"), Hostname: "wasmdial"}, fetchGet)
	if err != nil {
		t.Fatal(err)
	}
	p.Run(Notify{})
	t.Cleanup(p.cancel)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.Login(ctx); err != nil {
		t.Fatal(err)
	}
	return p
}

// liveStream is a Dial whose reader acknowledges as it goes (or not, while held).
type liveStream struct {
	s       *SSHSession
	mu      sync.Mutex
	sum     hash.Hash
	got     int
	unacked int
	written int
	hold    bool
	more    chan struct{}
	up      chan struct{}
	done    chan error
}

func openStream(p *IPN, host string, port int) *liveStream {
	h := sha256.New()
	ls := &liveStream{sum: h, more: make(chan struct{}, 1), up: make(chan struct{}), done: make(chan error, 1)}
	poke := func() {
		select {
		case ls.more <- struct{}{}:
		default:
		}
	}
	ls.s = p.Dial(host, port, SSHOptions{
		OutputWindow: OutputWindow,
		OnData: func(b []byte) {
			ls.mu.Lock()
			h.Write(b)
			ls.got += len(b)
			ls.unacked += len(b)
			n, hold := ls.unacked, ls.hold
			if !hold {
				ls.unacked = 0
			}
			ls.mu.Unlock()
			if !hold {
				ls.s.Ack(n)
			}
			poke()
		},
		OnWritten: func(n int) {
			ls.mu.Lock()
			ls.written += n
			ls.mu.Unlock()
			poke()
		},
		OnConnected: func() { close(ls.up) },
		OnDone:      func(code int, err error) { ls.done <- err; poke() },
	})
	return ls
}

func (ls *liveStream) connected(t *testing.T) {
	t.Helper()
	select {
	case <-ls.up:
	case err := <-ls.done:
		t.Fatalf("dial: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("dial: not connected after 60 s")
	}
}

// TestDialEcho64: 64 MiB through a TCP echo service on the peer's overlay address come back
// with the same sha256, the writer held to the write credit.
func TestDialEcho64(t *testing.T) {
	p := joinForDial(t)
	ls := openStream(p, dialEnv(t, "E2E_HOST"), dialPort(t, "E2E_ECHO_PORT"))
	ls.connected(t)
	const total = 64 << 20
	want := sha256.New()
	chunk := make([]byte, MaxWriteChunk)
	start := time.Now()
	for sent := 0; sent < total; {
		ls.mu.Lock()
		room := OutputWindow - (sent - ls.written)
		ls.mu.Unlock()
		if room < len(chunk) {
			select {
			case <-ls.more:
			case err := <-ls.done:
				t.Fatalf("ended while writing at %d: %v", sent, err)
			case <-time.After(60 * time.Second):
				t.Fatalf("no write credit for 60 s at %d bytes", sent)
			}
			continue
		}
		rand.Read(chunk)
		want.Write(chunk)
		ls.s.Write(chunk)
		sent += len(chunk)
	}
	for {
		ls.mu.Lock()
		got := ls.got
		ls.mu.Unlock()
		if got >= total {
			break
		}
		select {
		case <-ls.more:
		case err := <-ls.done:
			t.Fatalf("ended after %d of %d bytes: %v", got, total, err)
		case <-time.After(60 * time.Second):
			t.Fatalf("stalled at %d of %d bytes", got, total)
		}
	}
	took := time.Since(start)
	ls.mu.Lock()
	got, sum := ls.got, ls.sum.Sum(nil)
	ls.mu.Unlock()
	if got != total || !bytes.Equal(sum, want.Sum(nil)) {
		t.Fatalf("echoed %d bytes with sha256 %x, want %d with %x", got, sum, total, want.Sum(nil))
	}
	t.Logf("wasm dial via relay: 64 MiB echoed in %v (%.1f MiB/s each way)", took.Round(time.Millisecond), 64/took.Seconds())
	ls.s.Close()
	<-ls.done
}

// TestDialSlowReader: a reader that acknowledges nothing holds the peer's flood to the window
// (the Go heap stays small), and reading again lets it flow.
func TestDialSlowReader(t *testing.T) {
	p := joinForDial(t)
	ls := openStream(p, dialEnv(t, "E2E_HOST"), dialPort(t, "E2E_SOURCE_PORT"))
	ls.mu.Lock()
	ls.hold = true
	ls.mu.Unlock()
	ls.connected(t)
	for last := -1; ; {
		select {
		case err := <-ls.done:
			t.Fatalf("ended: %v", err)
		case <-ls.more:
			continue
		case <-time.After(time.Second):
		}
		ls.mu.Lock()
		n := ls.got
		ls.mu.Unlock()
		if n == last && n > 0 {
			break
		}
		last = n
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	ls.mu.Lock()
	held := ls.got
	ls.hold = false
	n := ls.unacked
	ls.unacked = 0
	ls.mu.Unlock()
	t.Logf("wasm dial via relay: a reader that reads nothing got %d bytes, then the flood stopped; Go heap %d MiB", held, ms.HeapAlloc>>20)
	if held > OutputWindow+32<<10 {
		t.Errorf("%d bytes reached a reader that acknowledged none, want at most the window (%d) and one read", held, OutputWindow)
	}
	if ms.HeapAlloc > 64<<20 {
		t.Errorf("Go heap %d MiB while the reader holds back, want it bounded", ms.HeapAlloc>>20)
	}
	ls.s.Ack(n)
	deadline := time.After(30 * time.Second)
	for {
		ls.mu.Lock()
		got := ls.got
		ls.mu.Unlock()
		if got > held+8<<20 {
			break
		}
		select {
		case <-ls.more:
		case err := <-ls.done:
			t.Fatalf("ended: %v", err)
		case <-deadline:
			t.Fatalf("after acknowledging, only %d more bytes in 30 s", got-held)
		}
	}
	ls.s.Close()
	<-ls.done
}

// TestDialRefused: a port the peer's policy refuses fails at once with connection_refused.
func TestDialRefused(t *testing.T) {
	p := joinForDial(t)
	start := time.Now()
	ls := openStream(p, dialEnv(t, "E2E_HOST"), dialPort(t, "E2E_REFUSED_PORT"))
	var err error
	select {
	case err = <-ls.done:
	case <-time.After(30 * time.Second):
		t.Fatal("no answer in 30 s")
	}
	took := time.Since(start)
	if errorCode(err) != CodeConnectionRefused || took > 5*time.Second {
		t.Fatalf("dial to a refused port: %v (%s) after %v; want connection_refused within 5 s", err, errorCode(err), took)
	}
	t.Logf("wasm dial via relay: refused port: %v after %v", err, took.Round(time.Millisecond))
}
