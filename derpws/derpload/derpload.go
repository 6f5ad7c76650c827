//go:build !js

// Package derpload drives load through a DERP relay: pairs of clients sending fixed-size packets,
// measuring packets/s, MiB/s and one-way latency. It is used by benchmarks and interop comparisons.
package derpload

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"tsconnect/derpws"
	"tsconnect/key"
)

// Options describes one load run. Zero fields take defaults.
type Options struct {
	// URL is the relay's /derp URL.
	URL string
	// Pairs is the number of sender→receiver client pairs; 0 means 1.
	Pairs int
	// Size is the packet size in bytes (at least 8); 0 means 1024.
	Size int
	// Duration is how long senders send; 0 means 2 s.
	Duration time.Duration
	// Window is the number of packets each pair keeps in flight; 0 means 16. It stays below the
	// relay's per-client queue so that a healthy relay drops nothing.
	Window int
	// UseWebSocket selects the WebSocket transport for every client.
	UseWebSocket bool
}

// Result is what a run measured.
type Result struct {
	Packets  uint64        // packets received
	Bytes    uint64        // packet bytes received
	Lost     uint64        // packets sent but never received
	Elapsed  time.Duration // from the first send to the last receive
	P50, P99 time.Duration // one-way latency, send call to Recv return
}

// PacketsPerSec returns the received packet rate.
func (r Result) PacketsPerSec() float64 { return float64(r.Packets) / r.Elapsed.Seconds() }

// MiBPerSec returns the received payload rate in MiB/s.
func (r Result) MiBPerSec() float64 { return float64(r.Bytes) / (1 << 20) / r.Elapsed.Seconds() }

// String formats r as one line.
func (r Result) String() string {
	return fmt.Sprintf("%9.0f pkt/s %8.1f MiB/s  p50 %7.1fµs  p99 %8.1fµs  lost %d",
		r.PacketsPerSec(), r.MiBPerSec(), float64(r.P50.Nanoseconds())/1e3, float64(r.P99.Nanoseconds())/1e3, r.Lost)
}

// maxSamples bounds the latency samples kept per run.
const maxSamples = 1 << 20

// Run connects the clients, sends for o.Duration and returns the figures.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Pairs <= 0 {
		o.Pairs = 1
	}
	if o.Size == 0 {
		o.Size = 1024
	}
	if o.Size < 8 {
		return Result{}, errors.New("derpload: packets need at least 8 bytes for the timestamp")
	}
	if o.Duration <= 0 {
		o.Duration = 2 * time.Second
	}
	if o.Window <= 0 {
		o.Window = 16
	}
	type pair struct{ from, to *derpws.Client }
	pairs := make([]pair, o.Pairs)
	var all []*derpws.Client
	defer func() {
		for _, c := range all {
			c.Close()
		}
	}()
	for i := range pairs {
		pairs[i].from = derpws.NewClient(key.NewPrivate(), o.URL, &derpws.ClientOptions{UseWebSocket: o.UseWebSocket})
		pairs[i].to = derpws.NewClient(key.NewPrivate(), o.URL, &derpws.ClientOptions{UseWebSocket: o.UseWebSocket})
		all = append(all, pairs[i].from, pairs[i].to)
	}
	// Connect everyone: a receiver must be on the relay before packets to it count.
	for _, c := range all {
		c.Start()
	}
	for _, c := range all {
		for c.Stats().Connects == 0 {
			if ctx.Err() != nil {
				return Result{}, ctx.Err()
			}
			time.Sleep(time.Millisecond)
		}
	}
	base := time.Now()
	stop := base.Add(o.Duration)
	var (
		recvd, nbytes, sentTotal atomic.Uint64
		lastRecv                 atomic.Int64
		mu                       sync.Mutex
		samples                  []int64
		senders, receivers       sync.WaitGroup
	)
	perPair := maxSamples / o.Pairs
	for _, p := range pairs {
		credit := make(chan struct{}, o.Window)
		for range o.Window {
			credit <- struct{}{}
		}
		senders.Add(1)
		go func() {
			defer senders.Done()
			pkt := make([]byte, o.Size)
			dst := p.to.PublicKey()
			var sent uint64
			t := time.NewTimer(time.Hour)
			defer t.Stop()
			for time.Now().Before(stop) {
				select {
				case <-credit:
				default:
					t.Reset(100 * time.Millisecond)
					select {
					case <-credit:
					case <-t.C:
						continue // a lost packet took a credit; check the clock again
					}
				}
				binary.BigEndian.PutUint64(pkt, uint64(time.Since(base)))
				p.from.Send(dst, pkt)
				sent++
			}
			sentTotal.Add(sent)
		}()
		receivers.Add(1)
		go func() {
			defer receivers.Done()
			local := make([]int64, 0, 1024)
			for {
				_, pkt, err := p.to.Recv()
				if err != nil {
					break // closed at the end of the run
				}
				now := time.Since(base)
				lastRecv.Store(int64(now))
				recvd.Add(1)
				nbytes.Add(uint64(len(pkt)))
				if len(local) < perPair && len(pkt) >= 8 {
					local = append(local, int64(now)-int64(binary.BigEndian.Uint64(pkt)))
				}
				select {
				case credit <- struct{}{}:
				default:
				}
			}
			mu.Lock()
			samples = append(samples, local...)
			mu.Unlock()
		}()
	}
	senders.Wait()
	// Let what is in flight arrive; a packet the relay dropped never will.
	for deadline := time.Now().Add(2 * time.Second); recvd.Load() < sentTotal.Load() && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	for _, p := range pairs {
		p.to.Close()
	}
	receivers.Wait()
	r := Result{Packets: recvd.Load(), Bytes: nbytes.Load(), Elapsed: time.Duration(lastRecv.Load())}
	if s := sentTotal.Load(); s > r.Packets {
		r.Lost = s - r.Packets
	}
	if len(samples) > 0 {
		slices.Sort(samples)
		r.P50 = time.Duration(samples[len(samples)/2])
		r.P99 = time.Duration(samples[len(samples)*99/100])
	}
	return r, nil
}
