//go:build !js

package derpws_test

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"tsconnect/derpws"
	"tsconnect/derpws/derpload"
	"tsconnect/key"
)

var (
	loadFlag = flag.Bool("derpws.load", false, "run TestLoad: the relay load table (1, 10, 100 pairs × 1 KiB, 1.4 KiB)")
	loadURL  = flag.String("derpws.load.url", "", "with -derpws.load: measure this relay (/derp URL) instead of one in-process")
	loadTime = flag.Duration("derpws.load.time", 2*time.Second, "with -derpws.load: sending time per row")
	loadWS   = flag.Bool("derpws.load.ws", false, "with -derpws.load: WebSocket transport")
)

// loadRelay serves a relay on loopback, or returns -derpws.load.url.
func loadRelay(tb testing.TB) string {
	if *loadURL != "" {
		return *loadURL
	}
	s := derpws.NewServer(key.NewPrivate(), nil)
	mux := http.NewServeMux()
	mux.Handle("/derp", s)
	mux.Handle("/derp/", s)
	hs := httptest.NewServer(mux)
	tb.Cleanup(func() {
		s.Close()
		hs.Close()
	})
	return hs.URL + "/derp"
}

var loadRows = []struct{ pairs, size int }{
	{1, 1024}, {1, 1400}, {10, 1024}, {10, 1400}, {100, 1024}, {100, 1400},
}

// TestLoad prints packets/s, MiB/s and one-way latency through one relay on loopback for
// 1, 10 and 100 client pairs with 1 KiB and 1.4 KiB packets. It runs only with -derpws.load:
//
//	go test -run TestLoad -derpws.load -v ./derpws
func TestLoad(t *testing.T) {
	if !*loadFlag {
		t.Skip("load table runs with -derpws.load")
	}
	url := loadRelay(t)
	fmt.Printf("relay %s, %v per row, websocket=%v\n", url, *loadTime, *loadWS)
	for _, row := range loadRows {
		r, err := derpload.Run(context.Background(), derpload.Options{
			URL: url, Pairs: row.pairs, Size: row.size, Duration: *loadTime, UseWebSocket: *loadWS,
		})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("%3d pairs %4d B: %s\n", row.pairs, row.size, r)
	}
	// Latency without queueing: one packet in flight.
	r, err := derpload.Run(context.Background(), derpload.Options{URL: url, Window: 1, Duration: *loadTime})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("  1 pair, window 1: %s\n", r)
}

// BenchmarkLoad runs each load row for one second and reports its figures.
func BenchmarkLoad(b *testing.B) {
	url := loadRelay(b)
	for _, row := range loadRows {
		b.Run(fmt.Sprintf("%dpairs/%dB", row.pairs, row.size), func(b *testing.B) {
			r, err := derpload.Run(context.Background(), derpload.Options{
				URL: url, Pairs: row.pairs, Size: row.size, Duration: time.Second, UseWebSocket: *loadWS,
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(r.PacketsPerSec(), "pkt/s")
			b.ReportMetric(r.MiBPerSec(), "MiB/s")
			b.ReportMetric(float64(r.P50.Microseconds()), "p50-µs")
			b.ReportMetric(float64(r.P99.Microseconds()), "p99-µs")
			b.ReportMetric(float64(r.Lost), "lost")
		})
	}
}
