package wsconn

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestQueueStream(t *testing.T) {
	q := newRecvQueue()
	q.push([]byte("hel"))
	q.push([]byte("lo, "))
	q.push([]byte("world"))
	q.fail(io.EOF, false)
	got, err := io.ReadAll(readerFunc(q.read))
	if err != nil || string(got) != "hello, world" {
		t.Fatalf("read %q, %v; want the bytes of all messages in order, then EOF", got, err)
	}
}

func TestQueueDeadlineKeepsBytes(t *testing.T) {
	q := newRecvQueue()
	q.setDeadline(time.Now().Add(10 * time.Millisecond))
	if _, err := q.read(make([]byte, 4)); !isTimeout(err) {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	q.push([]byte("late"))
	q.setDeadline(time.Time{})
	b := make([]byte, 4)
	if n, err := q.read(b); err != nil || string(b[:n]) != "late" {
		t.Fatalf("read after clearing the deadline: %q, %v", b[:n], err)
	}
}

func TestQueueCloseUnblocks(t *testing.T) {
	q := newRecvQueue()
	done := make(chan error)
	go func() {
		_, err := q.read(make([]byte, 4))
		done <- err
	}()
	q.fail(net.ErrClosed, true)
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
}

func TestQueueBounded(t *testing.T) {
	q := newRecvQueue()
	chunk := make([]byte, 1<<20)
	var err error
	for i := 0; i <= maxQueued>>20 && err == nil; i++ {
		err = q.push(chunk)
	}
	if err == nil || !strings.Contains(err.Error(), "behind") {
		t.Fatalf("pushing past %d unread bytes: %v, want an error", maxQueued, err)
	}
	if n, rerr := q.read(make([]byte, 10)); n != 0 || rerr == nil {
		t.Fatalf("read after overflow: %d, %v; want the queue dropped and the error", n, rerr)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
