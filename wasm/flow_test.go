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

func TestCreditBlocksUntilReleased(t *testing.T) {
	c := newCredit(10)
	ctx := context.Background()
	if !c.acquire(ctx, 6) || !c.acquire(ctx, 4) {
		t.Fatal("acquire within the window failed")
	}
	got := make(chan bool)
	go func() { got <- c.acquire(ctx, 3) }()
	select {
	case <-got:
		t.Fatal("acquire past a full window did not wait")
	case <-time.After(50 * time.Millisecond):
	}
	c.release(6)
	select {
	case ok := <-got:
		if !ok {
			t.Fatal("acquire failed after release")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("acquire still waiting after credit came back")
	}
}

func TestCreditOversizedChunkPassesWhenEmpty(t *testing.T) {
	c := newCredit(10)
	if !c.acquire(context.Background(), 25) {
		t.Fatal("a chunk larger than the window must pass when nothing is in flight")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if c.acquire(ctx, 1) {
		t.Fatal("acquire with 25 of 10 bytes in flight did not wait")
	}
}

func TestCreditReleaseIsClamped(t *testing.T) {
	c := newCredit(10)
	ctx := context.Background()
	c.acquire(ctx, 4)
	c.release(1 << 30) // more than in flight: the window opens, but does not grow
	c.release(-5)
	for range 10 {
		if !c.acquire(ctx, 1) {
			t.Fatal("acquire within the window failed")
		}
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if c.acquire(short, 1) {
		t.Fatal("an oversized release grew the window past its size")
	}
}

func TestCreditAcquireEndsWithContext(t *testing.T) {
	c := newCredit(1)
	c.acquire(context.Background(), 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool)
	go func() { done <- c.acquire(ctx, 1) }()
	cancel()
	select {
	case ok := <-done:
		if ok {
			t.Fatal("acquire succeeded after its context ended")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("acquire kept waiting after its context ended")
	}
}

// TestSSHOutputFlowControl: a page that does not acknowledge output holds the remote back
// (OnData gets no more than the window and one chunk, though the remote has much more to
// send); acknowledging lets the rest through, byte-exact.
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
