//go:build js

package wsconn

import (
	"bufio"
	"context"
	"io"
	"os"
	"strings"
	"syscall/js"
	"testing"
)

// TestBrowser runs the checks against the JavaScript WebSocket binding. It needs the server that
// TestJS (js_test.go, on the host) starts and passes in WSCONN_ECHO_URL; without it, only the dial
// to a closed port runs.
func TestBrowser(t *testing.T) {
	base, closed := os.Getenv("WSCONN_ECHO_URL"), os.Getenv("WSCONN_CLOSED_URL")
	if base == "" {
		t.Run("ClosedPort", func(t *testing.T) {
			if _, err := Dial(context.Background(), "ws://127.0.0.1:1/", ""); err == nil || !strings.Contains(err.Error(), "ws://127.0.0.1:1/") {
				t.Fatalf("Dial to a closed port: %v, want an error naming the URL", err)
			}
		})
		t.Skip("WSCONN_ECHO_URL is not set: run the host test TestJS for the rest")
	}
	testConn(t, base, closed)
}

// TestBrowserLaggingReader checks that a reader far behind fails the connection instead of
// queueing without bound: the server sends 16 MiB that nobody reads.
func TestBrowserLaggingReader(t *testing.T) {
	base := os.Getenv("WSCONN_ECHO_URL")
	if base == "" {
		t.Skip("WSCONN_ECHO_URL is not set: run the host test TestJS")
	}
	nc, err := Dial(context.Background(), base+"/flood", testSubprotocol)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := nc.(*conn)
	for {
		c.mu.Lock()
		err := c.werr
		c.mu.Unlock()
		if err != nil {
			break
		}
		c.q.mu.Lock()
		ch := c.q.changed
		c.q.mu.Unlock()
		<-ch // blocks, so JavaScript runs and messages arrive
	}
	n, err := io.Copy(io.Discard, c)
	if err == nil || !strings.Contains(err.Error(), "behind") {
		t.Fatalf("read %d bytes, then %v; want the lagging-reader error", n, err)
	}
	if n != 0 {
		t.Fatalf("read %d bytes after the failure; want the queue dropped", n)
	}
	t.Logf("lagging reader: %v", err)
}

// TestBrowserCoalescesWrites checks that the writes of one run of Go leave as one message (the
// server answers each message with its length), and that a later write is not held back.
func TestBrowserCoalescesWrites(t *testing.T) {
	base := os.Getenv("WSCONN_ECHO_URL")
	if base == "" {
		t.Skip("WSCONN_ECHO_URL is not set: run the host test TestJS")
	}
	nc, err := Dial(context.Background(), base+"/sizes", testSubprotocol)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	r := bufio.NewReader(nc)
	for _, p := range []string{"ab", "cde", "f"} {
		if _, err := nc.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if line, err := r.ReadString('\n'); err != nil || line != "6\n" {
		t.Fatalf("three writes in one run arrived as messages of %q (%v), want one of 6 bytes", line, err)
	}
	nc.Write([]byte("g"))
	if line, err := r.ReadString('\n'); err != nil || line != "1\n" {
		t.Fatalf("a lone write arrived as %q (%v), want a message of 1 byte", line, err)
	}
}

// TestBrowserCoalescesAcrossCallbacks checks that writes made by JavaScript callbacks that run
// back to back (two tasks queued together, as WebSocket messages that arrived together are) leave
// as one message: the flush is a task queued behind them, not a microtask after each. The tasks
// are node's setImmediate, which runs every callback queued before its phase together: two
// setTimeout(0)s were not always due together (node reads the clock at each, so under load the
// second fell a millisecond later, into the next turn of the loop, after the flush).
func TestBrowserCoalescesAcrossCallbacks(t *testing.T) {
	base := os.Getenv("WSCONN_ECHO_URL")
	if base == "" {
		t.Skip("WSCONN_ECHO_URL is not set: run the host test TestJS")
	}
	nc, err := Dial(context.Background(), base+"/sizes", testSubprotocol)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	r := bufio.NewReader(nc)
	var funcs []js.Func
	for _, p := range []string{"ab", "cde"} {
		f := js.FuncOf(func(js.Value, []js.Value) any {
			nc.Write([]byte(p))
			return nil
		})
		defer f.Release()
		funcs = append(funcs, f)
	}
	for _, f := range funcs {
		js.Global().Call("setImmediate", f)
	}
	if line, err := r.ReadString('\n'); err != nil || line != "5\n" {
		t.Fatalf("writes of two callbacks in a row arrived as messages of %q (%v), want one of 5 bytes", line, err)
	}
}
