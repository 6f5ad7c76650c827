package e2e

import (
	"bufio"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// ticker reads an open session's output, a line every so often, and records when the
// latest line arrived and the longest gap between lines, as a user watching the terminal
// would.
type ticker struct {
	lines atomic.Int64 // lines received so far
	last  atomic.Int64 // unix nanos of the latest line

	mu  sync.Mutex
	gap time.Duration // longest time between two lines since resetGap
}

// startTicker starts a command printing a line every 100 ms on cl and reads its output
// until the session ends.
func startTicker(t testing.TB, cl *ssh.Client) *ticker {
	t.Helper()
	s, err := cl.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	out, err := s.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("while :; do echo tick; sleep 0.1; done"); err != nil {
		t.Fatal(err)
	}
	return readTicks(out)
}

// readTicks reads the lines of out (a session's output) until it ends.
func readTicks(out io.Reader) *ticker {
	tk := &ticker{}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			now := time.Now()
			if prev := tk.last.Swap(now.UnixNano()); prev != 0 {
				tk.mu.Lock()
				tk.gap = max(tk.gap, now.Sub(time.Unix(0, prev)))
				tk.mu.Unlock()
			}
			tk.lines.Add(1)
		}
	}()
	return tk
}

// maxGap returns the longest time between two lines since resetGap (or the start).
func (tk *ticker) maxGap() time.Duration {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	return tk.gap
}

// resetGap starts measuring maxGap anew.
func (tk *ticker) resetGap() {
	tk.mu.Lock()
	tk.gap = 0
	tk.mu.Unlock()
}

// lastAt returns when the latest line arrived (zero before any).
func (tk *ticker) lastAt() time.Time {
	if n := tk.last.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// waitLine waits up to limit for a line that arrives after since, and returns when it came
// relative to since; ok is false if none came in time.
func (tk *ticker) waitLine(since time.Time, limit time.Duration) (d time.Duration, ok bool) {
	deadline := since.Add(limit)
	for time.Now().Before(deadline) {
		if l := time.Unix(0, tk.last.Load()); l.After(since) {
			return l.Sub(since), true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0, false
}
