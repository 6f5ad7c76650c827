package flowcredit

import (
	"context"
	"testing"
	"time"
)

func TestCreditBlocksUntilReleased(t *testing.T) {
	c := New(10)
	ctx := context.Background()
	if !c.Acquire(ctx, 6) || !c.Acquire(ctx, 4) {
		t.Fatal("acquire within the window failed")
	}
	got := make(chan bool)
	go func() { got <- c.Acquire(ctx, 3) }()
	select {
	case <-got:
		t.Fatal("acquire past a full window did not wait")
	case <-time.After(50 * time.Millisecond):
	}
	c.Release(6)
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
	c := New(10)
	if !c.Acquire(context.Background(), 25) {
		t.Fatal("a chunk larger than the window must pass when nothing is in flight")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if c.Acquire(ctx, 1) {
		t.Fatal("acquire with 25 of 10 bytes in flight did not wait")
	}
}

func TestCreditReleaseIsClamped(t *testing.T) {
	c := New(10)
	ctx := context.Background()
	c.Acquire(ctx, 4)
	c.Release(1 << 30) // more than in flight: the window opens, but does not grow
	c.Release(-5)
	for range 10 {
		if !c.Acquire(ctx, 1) {
			t.Fatal("acquire within the window failed")
		}
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if c.Acquire(short, 1) {
		t.Fatal("an oversized release grew the window past its size")
	}
}

func TestCreditAcquireEndsWithContext(t *testing.T) {
	c := New(1)
	c.Acquire(context.Background(), 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool)
	go func() { done <- c.Acquire(ctx, 1) }()
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
