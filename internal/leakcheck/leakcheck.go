// Package leakcheck fails a test that leaves goroutines behind.
// It ignores the Go runtime's own goroutines, such as js/wasm's event handler.
package leakcheck

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// Check records the goroutines running now; when t ends it waits up to 5 s for any new
// ones to finish (they wind down asynchronously after Close, slowly in wasm on a busy
// machine) and fails t, listing them, if some are still there.
func Check(t testing.TB) {
	t.Helper()
	before := goroutines()
	t.Cleanup(func() {
		var extra []string
		for range 500 {
			extra = extra[:0]
			for id, stack := range goroutines() {
				if _, ok := before[id]; !ok {
					extra = append(extra, stack)
				}
			}
			if len(extra) == 0 {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Errorf("%d goroutines leaked:\n%s", len(extra), strings.Join(extra, "\n\n"))
	})
}

// goroutines returns the stacks of the goroutines that are not the runtime's or the
// caller's own, by goroutine ID.
func goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		if strings.Contains(header, "[running]") || isRuntime(g) {
			continue
		}
		id := strings.Fields(header)
		if len(id) > 1 {
			out[id[1]] = g
		}
	}
	return out
}

// isRuntime reports goroutines the runtime and the testing package start on their own.
func isRuntime(stack string) bool {
	for _, s := range []string{"runtime.handleEvent", "testing.(*T).Run", "testing.(*M).", "runtime.ensureSigM", "os/signal.signal_recv", "testing.runFuzzing"} {
		if strings.Contains(stack, s) {
			return true
		}
	}
	return false
}
