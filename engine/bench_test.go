package engine

import (
	"context"
	"io"
	"net/netip"
	"testing"
)

// BenchmarkTCPThroughput measures one TCP stream between two engines over memrelay: each
// op is 64 KiB written at one end and read at the other.
func BenchmarkTCPThroughput(b *testing.B) {
	const chunk = 64 << 10
	x, y := pair(b)
	l, err := y.ListenTCP(5001)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	received := make(chan int64, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			received <- -1
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		received <- n
	}()
	c, err := x.DialContext(context.Background(), "tcp", netip.AddrPortFrom(y.v4, 5001))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, chunk)
	newRandReader().Read(buf)

	b.SetBytes(chunk)
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	c.(interface{ CloseWrite() error }).CloseWrite()
	n := <-received
	b.StopTimer()
	c.Close()
	if n != int64(b.N)*chunk {
		b.Fatalf("received %d bytes, want %d", n, int64(b.N)*chunk)
	}
	b.ReportMetric(float64(n)/(1<<20)/b.Elapsed().Seconds(), "MiB/s")
}
