package wsconn

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"
)

// testSubprotocol is the subprotocol the test server speaks.
const testSubprotocol = "x"

// testConn runs the checks every build must pass against the test server at base (ws://host:port);
// closed is a URL nothing listens on.
func testConn(t *testing.T, base, closed string) {
	t.Run("Echo4MiB", func(t *testing.T) { testEcho(t, base+"/echo") })
	t.Run("ReadDeadline", func(t *testing.T) {
		c := dial(t, base+"/echo")
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, err := c.Read(make([]byte, 10))
		if !isTimeout(err) {
			t.Fatalf("Read past the deadline: %v, want a timeout error", err)
		}
	})
	t.Run("CloseUnblocksRead", func(t *testing.T) {
		c := dial(t, base+"/echo")
		done := make(chan error, 1)
		go func() {
			_, err := c.Read(make([]byte, 10))
			done <- err
		}()
		time.Sleep(20 * time.Millisecond) // let the Read block first (the check holds either way)
		c.Close()
		if err := <-done; err == nil {
			t.Fatal("Read after Close succeeded")
		}
		if _, err := c.Write([]byte("x")); err == nil {
			t.Fatal("Write after Close succeeded")
		}
	})
	t.Run("ClosedPort", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a guard against hanging
		defer cancel()
		c, err := Dial(ctx, closed, testSubprotocol)
		if err == nil {
			c.Close()
			t.Fatalf("Dial %s succeeded", closed)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Dial %s did not fail by itself: %v", closed, err)
		}
		if !strings.Contains(err.Error(), closed) {
			t.Fatalf("error does not name the URL %s: %v", closed, err)
		}
		t.Logf("dial to a closed port: %v", err)
	})
	t.Run("CanceledDial", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if c, err := Dial(ctx, base+"/echo", testSubprotocol); !errors.Is(err, context.Canceled) {
			if c != nil {
				c.Close()
			}
			t.Fatalf("Dial with a canceled ctx: %v, want context.Canceled", err)
		}
	})
	t.Run("SubprotocolRefused", func(t *testing.T) {
		c, err := Dial(context.Background(), base+"/nosub", testSubprotocol)
		if err == nil {
			c.Close()
			t.Fatal("Dial succeeded though the server ignored the subprotocol")
		}
		if !strings.Contains(err.Error(), base+"/nosub") {
			t.Fatalf("error does not name the URL: %v", err)
		}
		t.Logf("subprotocol refused: %v", err)
	})
	t.Run("MessageLimit", func(t *testing.T) {
		c, err := DialLimit(context.Background(), base+"/big", testSubprotocol, 64<<10)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		n, err := io.Copy(io.Discard, c)
		if err == nil {
			t.Fatalf("read %d bytes of a 100 KiB message under a 64 KiB limit without error", n)
		}
		t.Logf("over the limit: %v", err)
	})
}

func dial(t *testing.T, u string) net.Conn {
	t.Helper()
	c, err := Dial(context.Background(), u, testSubprotocol)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// testEcho writes 4 MiB of random bytes in odd-sized writes while reading the echo back.
func testEcho(t *testing.T, u string) {
	c := dial(t, u)
	data := make([]byte, 4<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	errc := make(chan error, 1)
	go func() {
		sizes := []int{1, 3, 7, 1021, 65537, 4093, 131071, 2}
		for off, i := 0, 0; off < len(data); i++ {
			n := min(sizes[i%len(sizes)], len(data)-off)
			if _, err := c.Write(data[off : off+n]); err != nil {
				errc <- err
				return
			}
			off += n
		}
		errc <- nil
	}()
	got := make([]byte, len(data))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("writing: %v", err)
	}
	if !bytes.Equal(got, data) {
		i := 0
		for got[i] == data[i] {
			i++
		}
		t.Fatalf("echo differs from what was sent at byte %d of %d", i, len(data))
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
