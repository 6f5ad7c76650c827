package leakcheck

import (
	"strings"
	"testing"
	"time"
)

// fakeT captures the error leakcheck reports.
type fakeT struct {
	testing.TB
	cleanups []func()
	errs     []string
}

func (f *fakeT) Helper()                        {}
func (f *fakeT) Cleanup(fn func())              { f.cleanups = append(f.cleanups, fn) }
func (f *fakeT) Errorf(format string, a ...any) { f.errs = append(f.errs, format) }

func TestFindsALeak(t *testing.T) {
	f := &fakeT{TB: t}
	Check(f)
	stop := make(chan struct{})
	go func() { <-stop }() // leaked until after the check
	for _, c := range f.cleanups {
		c()
	}
	close(stop)
	if len(f.errs) != 1 || !strings.Contains(f.errs[0], "leaked") {
		t.Fatalf("a goroutine alive past the check was not reported: %q", f.errs)
	}
}

func TestWaitsForSlowExit(t *testing.T) {
	f := &fakeT{TB: t}
	Check(f)
	go func() { time.Sleep(200 * time.Millisecond) }()
	for _, c := range f.cleanups {
		c()
	}
	if len(f.errs) != 0 {
		t.Fatalf("a goroutine that ends in 200 ms was reported: %q", f.errs)
	}
}
