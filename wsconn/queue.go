package wsconn

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// maxQueued bounds the bytes received but not yet read: a reader this far behind fails the
// connection rather than let memory grow without limit.
const maxQueued = 8 << 20

// recvQueue holds received bytes until Read takes them. push and fail never block, so a
// JavaScript event handler may call them; read blocks until bytes, an error or the deadline.
type recvQueue struct {
	mu       sync.Mutex
	chunks   [][]byte
	n        int   // bytes in chunks
	err      error // returned once chunks are drained; set once unless a later fail drops
	deadline time.Time
	changed  chan struct{} // closed and replaced on every change
}

func newRecvQueue() *recvQueue { return &recvQueue{changed: make(chan struct{})} }

// notify wakes every waiting read; q.mu is held.
func (q *recvQueue) notify() {
	close(q.changed)
	q.changed = make(chan struct{})
}

// push queues b (which the queue then owns). Past maxQueued it fails the queue and returns the
// error, which the caller should end the connection with.
func (q *recvQueue) push(b []byte) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil || len(b) == 0 {
		return nil
	}
	if q.n+len(b) > maxQueued {
		q.err = fmt.Errorf("wsconn: the reader fell more than %d bytes behind", maxQueued)
		q.chunks, q.n = nil, 0
		q.notify()
		return q.err
	}
	q.chunks = append(q.chunks, b)
	q.n += len(b)
	q.notify()
	return nil
}

// fail makes reads return err once the queued bytes are read, or at once when drop discards them
// (drop also replaces an earlier error, so Close turns any end into net.ErrClosed).
func (q *recvQueue) fail(err error, drop bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if drop {
		q.chunks, q.n, q.err = nil, 0, err
	} else if q.err == nil {
		q.err = err
	}
	q.notify()
}

// setDeadline sets the read deadline and wakes a waiting read to apply it.
func (q *recvQueue) setDeadline(t time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.deadline = t
	q.notify()
}

// read copies queued bytes into p, waiting for some if none are queued. After the deadline it
// returns os.ErrDeadlineExceeded (the bytes stay queued); once failed and drained, the error.
func (q *recvQueue) read(p []byte) (int, error) {
	for {
		q.mu.Lock()
		dl := q.deadline
		if !dl.IsZero() && !time.Now().Before(dl) {
			q.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		}
		if q.n > 0 {
			n := 0
			for n < len(p) && len(q.chunks) > 0 {
				c := copy(p[n:], q.chunks[0])
				n += c
				if c == len(q.chunks[0]) {
					q.chunks[0] = nil
					q.chunks = q.chunks[1:]
				} else {
					q.chunks[0] = q.chunks[0][c:]
				}
			}
			q.n -= n
			q.mu.Unlock()
			return n, nil
		}
		if q.err != nil || len(p) == 0 {
			err := q.err
			q.mu.Unlock()
			return 0, err
		}
		ch := q.changed
		q.mu.Unlock()
		if dl.IsZero() {
			<-ch
			continue
		}
		t := time.NewTimer(time.Until(dl))
		select {
		case <-ch:
		case <-t.C:
		}
		t.Stop()
	}
}
