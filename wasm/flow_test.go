package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"tsconnect/internal/sshtest"
)

func TestSSHOutputFlowControl(t *testing.T) {
	srv := sshtest.New(t)
	eng := &testEngine{server: srv.Listen(), nm: testMap(sshtest.AuthorizedKey(srv.Signer))}
	p := newTestIPN(t, eng)
	p.Run(Notify{})
	if err := p.Login(context.Background()); err != nil {
		t.Fatal(err)
	}
	const window = 64 << 10
	var mu sync.Mutex
	var got []int // sizes of the chunks OnData received, in order
	var out bytes.Buffer
	more := make(chan struct{}, 1)
	done := make(chan struct{})
	s := p.SSH("agent", "alice", SSHOptions{
		OutputWindow: window,
		OnData: func(b []byte) {
			mu.Lock()
			got = append(got, len(b))
			out.Write(b)
			mu.Unlock()
			select {
			case more <- struct{}{}:
			default:
			}
		},
		OnDone: func(int, error) { close(done) },
	})
	defer func() { s.Close(); <-done }()
	line := strings.Repeat("x", 1000)
	const lines = 4096 // 4 MiB echoed: far more than the window and the SSH window (2 MiB)
	input := strings.Repeat(line+"\n", lines)
	s.Write([]byte(input))
	received := func() int {
		mu.Lock()
		defer mu.Unlock()
		return out.Len()
	}
	// Wait for the output to start (a loaded machine may take seconds), then for it to stop:
	// nothing acknowledged, so it must stop early.
	select {
	case <-more:
	case <-done:
		t.Fatal("the session ended")
	case <-time.After(30 * time.Second):
		t.Fatal("no output within 30 s")
	}
	for last := -1; ; {
		select {
		case <-more:
			continue
		case <-done:
			t.Fatal("the session ended")
		case <-time.After(300 * time.Millisecond):
		}
		n := received()
		if n == last {
			break
		}
		last = n
	}
	mu.Lock()
	maxChunk := slices.Max(got)
	n := out.Len()
	mu.Unlock()
	if n == 0 || n > window+maxChunk {
		t.Fatalf("without acknowledgements OnData got %d bytes (chunks up to %d), want 1…%d", n, maxChunk, window+maxChunk)
	}
	want := len(line+"\r\n") * lines
	acked := 0
	for deadline := time.Now().Add(30 * time.Second); acked < want && time.Now().Before(deadline); {
		if n := received(); n > acked {
			s.Ack(n - acked)
			acked = n
			continue
		}
		select {
		case <-more:
		case <-time.After(100 * time.Millisecond):
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if out.String() != strings.Repeat(line+"\r\n", lines) {
		t.Fatalf("after acknowledging, got %d bytes, want the %d echoed byte-exact", out.Len(), want)
	}
}
