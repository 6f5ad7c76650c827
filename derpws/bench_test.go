//go:build !js

package derpws

import (
	"sync"
	"testing"
	"time"

	"tsconnect/key"
)

// BenchmarkRelay measures packets per second of 1 KiB through one in-process relay on
// loopback: each pair's sender keeps at most window packets in flight, so nothing is dropped
// and every packet is counted on arrival.
func BenchmarkRelay(b *testing.B) {
	for _, bc := range []struct {
		name   string
		ws     bool
		pairs  int
		window int
	}{
		{"upgrade/1pair", false, 1, 32},
		{"upgrade/4pairs", false, 4, 32},
		{"websocket/1pair", true, 1, 32},
		{"websocket/4pairs", true, 4, 32},
	} {
		b.Run(bc.name, func(b *testing.B) { benchRelay(b, bc.ws, bc.pairs, bc.window) })
	}
}

func benchRelay(b *testing.B, ws bool, pairs, window int) {
	s := NewServer(key.NewPrivate(), nil)
	r := &relay{Server: s}
	r.hs = newBenchHTTP(s)
	r.url = r.hs.URL + "/derp"
	defer r.close()

	type pair struct{ from, to *Client }
	var ps []pair
	for range pairs {
		from := NewClient(key.NewPrivate(), r.url, &ClientOptions{UseWebSocket: ws})
		to := NewClient(key.NewPrivate(), r.url, &ClientOptions{UseWebSocket: ws})
		defer from.Close()
		defer to.Close()
		from.ensureStarted()
		to.ensureStarted()
		ps = append(ps, pair{from, to})
	}
	for _, p := range ps {
		for _, c := range []*Client{p.from, p.to} {
			for s.Stats(c.PublicKey()).Connections == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}
	pkt := make([]byte, 1024)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i, p := range ps {
		n := b.N / pairs
		if i == 0 {
			n += b.N % pairs
		}
		credit := make(chan struct{}, window)
		for range window {
			credit <- struct{}{}
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			dst := p.to.PublicKey()
			for range n {
				<-credit
				p.from.Send(dst, pkt)
			}
		}()
		go func() {
			defer wg.Done()
			for range n {
				if _, _, err := p.to.Recv(); err != nil {
					b.Error(err)
					return
				}
				credit <- struct{}{}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "pkt/s")
	var drops uint64
	for _, p := range ps {
		drops += s.Stats(p.to.PublicKey()).Drops + p.from.Stats().SendDrops
	}
	if drops != 0 {
		b.Errorf("%d packets dropped", drops)
	}
}
