//go:build !js

package controlws

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"

	"tsconnect/key"
)

// BenchmarkHandshake measures one Noise IK handshake with its confirmation, both ends, over a pipe.
func BenchmarkHandshake(b *testing.B) {
	serverKey, machine := key.NewPrivate(), key.NewPrivate()
	for b.Loop() {
		a, z := net.Pipe()
		errc := make(chan error, 1)
		go func() { _, err := respond(context.Background(), z, serverKey, Version, supported); errc <- err }()
		if _, err := initiate(context.Background(), a, machine, serverKey.Public(), Version, supported); err != nil {
			b.Fatal(err)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		a.Close()
		z.Close()
	}
}

// BenchmarkFullMap measures sending a 1,200-peer full map (JSON encode, Noise, decode) between two Conns.
func BenchmarkFullMap(b *testing.B) {
	serverKey := key.NewPrivate()
	a, z := net.Pipe()
	defer a.Close()
	defer z.Close()
	srvc := make(chan *Conn, 1)
	go func() { c, _ := respond(context.Background(), z, serverKey, Version, supported); srvc <- c }()
	cli, err := initiate(context.Background(), a, key.NewPrivate(), serverKey.Public(), Version, supported)
	if err != nil {
		b.Fatal(err)
	}
	srv := <-srvc
	nm := &NetworkMap{}
	for i := range 1200 {
		nm.Peers = append(nm.Peers, testPeer(int64(i)))
	}
	size, _ := json.Marshal(nm)
	b.SetBytes(int64(len(size)))
	errc := make(chan error, 1)
	go func() {
		for {
			env, err := cli.ReadEnvelope()
			if err != nil {
				errc <- err
				return
			}
			var r MapResponse
			if err := env.DecodeBody(&r); err != nil {
				errc <- err
				return
			}
			errc <- nil
		}
	}()
	for b.Loop() {
		if err := srv.Send(TypeMapResponse, 1, &MapResponse{Full: nm}); err != nil {
			b.Fatal(err)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoopbackMaps measures what Noise over a WebSocket over loopback TCP carries from
// control to nodes on this machine: a 10,000-peer full map, encoded once, sent again and
// again down BENCH_STREAMS (default 2) connections, each read by a node that only reads
// envelopes, as BenchmarkScale's simulated nodes do. It prints MB/s: the ceiling for a dense
// network's full maps.
func BenchmarkLoopbackMaps(b *testing.B) {
	streams := 2
	if v := os.Getenv("BENCH_STREAMS"); v != "" {
		var err error
		if streams, err = strconv.Atoi(v); err != nil || streams < 1 {
			b.Fatalf("BENCH_STREAMS=%q: want a positive number", v)
		}
	}
	serverKey := key.NewPrivate()
	accepted := make(chan *Conn, streams)
	done := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := acceptHTTP(w, r, serverKey, supported)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		accepted <- c
		<-done
	}))
	defer hs.Close()
	defer close(done)
	nm := &NetworkMap{}
	for i := range 10000 {
		nm.Peers = append(nm.Peers, testPeer(int64(i)))
	}
	full, err := NewEnvelope(TypeMapResponse, 2, &MapResponse{Full: nm})
	if err != nil {
		b.Fatal(err)
	}
	type pair struct{ node, control *Conn }
	var pairs []pair
	for range streams {
		c, err := DialConn(context.Background(), DialOptions{ServerURL: hs.URL, ServerKey: serverKey.Public(), MachineKey: key.NewPrivate()})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		pairs = append(pairs, pair{c, <-accepted})
	}
	b.SetBytes(int64(len(full.Body)) * int64(streams))
	b.ResetTimer()
	var wg sync.WaitGroup
	for _, p := range pairs {
		wg.Go(func() {
			for range b.N {
				env, err := p.node.ReadEnvelope()
				if err != nil || len(env.Body) != len(full.Body) {
					b.Errorf("read: %v", err)
					return
				}
			}
		})
		wg.Go(func() {
			for range b.N {
				if err := p.control.WriteEnvelope(full); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(len(full.Body))/1e6, "MB/map")
}
