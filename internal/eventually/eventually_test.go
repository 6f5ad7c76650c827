package eventually

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeT captures the failure wait reports; Fatalf ends the goroutine as testing's does.
type fakeT struct {
	testing.TB
	failed string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, a ...any) {
	f.failed = fmt.Sprintf(format, a...)
	runtime.Goexit()
}

func TestWaitsUntilTrue(t *testing.T) {
	var n atomic.Int32
	go func() {
		time.Sleep(50 * time.Millisecond)
		n.Store(1)
	}()
	True(t, "n to become 1", func() bool { return n.Load() == 1 })
	if n.Load() != 1 {
		t.Fatal("True returned before its condition held")
	}
}

func TestFailsNamingWhat(t *testing.T) {
	f := &fakeT{TB: t}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		wait(f, "the moon to turn blue", func() bool { return false }, 200*time.Millisecond)
	}()
	<-done
	if !strings.Contains(f.failed, "the moon to turn blue") {
		t.Errorf("failure %q does not name what it waited for", f.failed)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("gave up after %v, before its guard of 200ms", d)
	}
}

// TestTookTimes: Took returns about how long cond took to hold.
func TestTookTimes(t *testing.T) {
	start := time.Now()
	d := Took(t, "100 ms to pass", func() bool { return time.Since(start) >= 100*time.Millisecond })
	if d < 100*time.Millisecond || d > HangGuard {
		t.Errorf("Took returned %v for a condition that held after 100ms", d)
	}
}
