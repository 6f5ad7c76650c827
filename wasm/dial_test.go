package main

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// echoServer listens on loopback and echoes each connection until its peer half-closes.
func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// stream is a Dial under test: what arrived, the write credit back and the end.
type stream struct {
	s       *SSHSession
	mu      sync.Mutex
	got     bytes.Buffer
	written int
	more    chan struct{}
	done    chan struct{}
	code    int
	err     error
}

func dialTest(p *IPN, host string, port int) *stream {
	st := &stream{more: make(chan struct{}, 1), done: make(chan struct{})}
	poke := func() {
		select {
		case st.more <- struct{}{}:
		default:
		}
	}
	st.s = p.Dial(host, port, SSHOptions{
		OutputWindow: OutputWindow,
		OnData: func(b []byte) {
			st.mu.Lock()
			st.got.Write(b)
			st.mu.Unlock()
			poke()
		},
		OnWritten: func(n int) {
			st.mu.Lock()
			st.written += n
			st.mu.Unlock()
			poke()
		},
		OnDone: func(code int, err error) { st.code, st.err = code, err; close(st.done) },
	})
	return st
}

func (st *stream) wait(t *testing.T) {
	t.Helper()
	select {
	case <-st.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the stream did not end within 30 s")
	}
}

// TestDialEcho: bytes written within the write credit come back byte-exact through a TCP
// echo server, the half-close ends the echo and the stream ends with 0; the peer's port is
// the one asked for.
func TestDialEcho(t *testing.T) {
	eng := &testEngine{server: echoServer(t), nm: testMap("")}
	p := newTestIPN(t, eng)
	p.Run(Notify{})
	st := dialTest(p, "nossh", 5900) // no SSH needed for a plain stream
	data := make([]byte, 8<<20)
	rand.Read(data)
	sent := 0
	for sent < len(data) {
		st.mu.Lock()
		room := OutputWindow - (sent - st.written)
		got := st.got.Len()
		st.mu.Unlock()
		if got > 0 {
			st.s.Ack(got) // acknowledging more than once is clamped; this test reads all
		}
		if room <= 0 {
			select {
			case <-st.more:
			case <-st.done:
				t.Fatalf("ended while writing: %v", st.err)
			}
			continue
		}
		n := min(room, MaxWriteChunk, len(data)-sent)
		st.s.Write(data[sent : sent+n])
		sent += n
	}
	st.s.CloseWrite()
	for {
		st.mu.Lock()
		n := st.got.Len()
		st.mu.Unlock()
		st.s.Ack(n)
		select {
		case <-st.more:
			continue
		case <-st.done:
		}
		break
	}
	if st.err != nil || st.code != 0 {
		t.Fatalf("end: %d %v; want 0 after the echo server closed", st.code, st.err)
	}
	if !bytes.Equal(st.got.Bytes(), data) {
		t.Fatalf("echoed %d bytes, want the %d sent byte-exact", st.got.Len(), len(data))
	}
	if eng.dialed[0] != "100.64.0.3:5900" {
		t.Errorf("dialed %v, want 100.64.0.3:5900", eng.dialed)
	}
}

// TestDialRefusals: what the page sends is bounded (host, port, streams, write credit),
// and a refused connection comes back as connection_refused at once.
func TestDialRefusals(t *testing.T) {
	eng := &testEngine{server: echoServer(t), nm: testMap("")}
	p := newTestIPN(t, eng)
	p.Run(Notify{})
	t.Cleanup(p.cancel)
	for _, c := range []struct {
		host string
		port int
		code string
	}{
		{"", 80, "bad_request"},
		{strings.Repeat("a", MaxDialHost+1), 80, "bad_request"},
		{"nossh", 0, "bad_request"},
		{"nossh", 65536, "bad_request"},
		{"nossh", -1, "bad_request"},
		{"elsewhere", 80, CodeUnknownHost},
	} {
		st := dialTest(p, c.host, c.port)
		st.wait(t)
		if got := errorCode(st.err); got != c.code {
			t.Errorf("dial(%.20q, %d): %v (%s), want %s", c.host, c.port, st.err, got, c.code)
		}
	}

	var open []*stream
	for range MaxStreams {
		open = append(open, dialTest(p, "nossh", 7))
	}
	for _, st := range open { // each connected: echo one byte
		st.s.Write([]byte{1})
		for {
			st.mu.Lock()
			n := st.got.Len()
			st.mu.Unlock()
			if n == 1 {
				break
			}
			select {
			case <-st.more:
			case <-st.done:
				t.Fatalf("stream ended: %v", st.err)
			}
		}
	}
	extra := dialTest(p, "nossh", 7)
	extra.wait(t)
	if errorCode(extra.err) != CodeTooManyStreams {
		t.Errorf("stream %d: %v, want %s", MaxStreams+1, extra.err, CodeTooManyStreams)
	}
	open[0].s.Close()
	open[0].wait(t)
	if errorCode(open[0].err) != CodeClosed {
		t.Errorf("closed stream: %v, want closed", open[0].err)
	}
	// A page writing past its credit fails its stream (the echo server does not read).
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			<-p.ctx.Done()
			c.Close()
		}
	}()
	eng.server = ln.Addr().String()
	over := dialTest(p, "nossh", 7)
	chunk := make([]byte, MaxWriteChunk)
	for range (OutputWindow+MaxWriteChunk)/MaxWriteChunk + 64 {
		over.s.Write(chunk)
	}
	over.wait(t)
	if errorCode(over.err) != "bad_request" || !strings.Contains(over.err.Error(), "write credit") {
		t.Errorf("writing past the credit: %v, want bad_request", over.err)
	}
	for _, st := range open[1:] {
		st.s.Close()
	}

	eng.dialErr = &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	start := time.Now()
	st := dialTest(p, "100.64.0.3", 5900)
	st.wait(t)
	if errorCode(st.err) != CodeConnectionRefused || !strings.Contains(st.err.Error(), "port 5900") || time.Since(start) > 5*time.Second {
		t.Errorf("refused: %v (%s); want connection_refused naming the port", st.err, errorCode(st.err))
	}
}
