package sshdtest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Logs records the lines a server logs (give Logf as its Logf), passing each to t.Log, for
// a test to look through. It is safe for concurrent use.
type Logs struct {
	t     testing.TB
	mu    sync.Mutex
	lines []string
}

// NewLogs returns an empty record whose lines also go to t.Log.
func NewLogs(t testing.TB) *Logs { return &Logs{t: t} }

// Logf records one line.
func (l *Logs) Logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	l.t.Log(line)
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
}

// Contains reports whether a line logged so far contains substr.
func (l *Logs) Contains(substr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.lines, func(s string) bool { return strings.Contains(s, substr) })
}

// Lines returns the lines logged so far.
func (l *Logs) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}
