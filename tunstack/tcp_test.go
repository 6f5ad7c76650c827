package tunstack

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestTCPResumesAfterPathOutage: a connection whose sender writes a line every 50 ms (more
// often than its RTO) loses its path for 3 s; once the path is back, lines arrive again within
// maxRTO plus slack. (With gVisor's RACK tail loss probes the retransmission timer restarted on
// every write and never fired: the connection stayed frozen for as long as the writes went on.)
func TestTCPResumesAfterPathOutage(t *testing.T) {
	a := newStack(t, "100.64.0.1/32")
	b := newStack(t, "100.64.0.2/32")
	var cut atomic.Bool
	var wg sync.WaitGroup
	wg.Add(2)
	go wireCut(a, b, &wg, &cut)
	go wireCut(b, a, &wg, &cut)
	defer func() {
		a.Close()
		b.Close()
		wg.Wait()
	}()

	l, err := b.ListenTCP(80)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := fmt.Fprintf(c, "line %d\n", i); err != nil {
				return
			}
		}
	}()
	c, err := a.DialContext(context.Background(), "tcp", netip.MustParseAddrPort("100.64.0.2:80"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var last atomic.Int64 // unix nanos of the latest line
	go func() {
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			last.Store(time.Now().UnixNano())
		}
	}()
	waitLine := func(since time.Time, limit time.Duration) (time.Duration, bool) {
		for time.Since(since) < limit {
			if l := time.Unix(0, last.Load()); l.After(since) {
				return l.Sub(since), true
			}
			time.Sleep(10 * time.Millisecond)
		}
		return 0, false
	}
	if _, ok := waitLine(time.Now(), 2*time.Second); !ok {
		t.Fatal("no line before the outage")
	}
	cut.Store(true)
	time.Sleep(3 * time.Second)
	cut.Store(false)
	back := time.Now()
	limit := time.Duration(maxRTO) + time.Second
	d, ok := waitLine(back, limit)
	if !ok {
		t.Fatalf("no line within %v of the path coming back after a 3 s outage", limit)
	}
	t.Logf("lines resumed %v after the path came back", d.Round(time.Millisecond))
}
