//go:build !js

package derpws

import (
	"encoding/binary"
	"net"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"tsconnect/internal/eventually"
	"tsconnect/internal/leakcheck"
	"tsconnect/key"
)

// slowReader reads rc's frames at about pace per RecvPacket until rc closes, counting the
// packets from each source.
type slowReader struct {
	mu    sync.Mutex
	got   map[key.Public]int
	total int
}

func readSlowly(rc *rawConn, pace time.Duration) *slowReader {
	sr := &slowReader{got: make(map[key.Public]int)}
	go func() {
		for {
			rc.nc.SetReadDeadline(time.Now().Add(hangGuard))
			ft, n, err := readFrameHeader(rc.br)
			if err != nil {
				return
			}
			b, err := readSmallPayload(rc.br, n, nil)
			if err != nil {
				return
			}
			if ft == FrameRecvPacket && len(b) >= KeyLen {
				sr.mu.Lock()
				sr.got[key.Public(b[:KeyLen])]++
				sr.total++
				sr.mu.Unlock()
				time.Sleep(pace)
			}
		}
	}()
	return sr
}

// all returns the count of packets read so far.
func (sr *slowReader) all() int {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	return sr.total
}

func (sr *slowReader) count(k key.Public) int {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	return sr.got[k]
}

// flood sends 1 KiB packets from rc to dst until stop closes: bursts of burst packets, with a
// pause of a millisecond after each if pause is set (tens of thousands a second, while leaving
// the machine's CPU to the others), else as fast as the relay takes them.
func flood(rc *rawConn, dst key.Public, burst int, pause bool, stop chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	pkt := make([]byte, 1024)
	for {
		select {
		case <-stop:
			return
		default:
		}
		for range burst {
			if writePacketFrame(rc.bw, FrameSendPacket, &dst, pkt) != nil {
				return
			}
		}
		if rc.bw.Flush() != nil {
			return
		}
		if pause {
			time.Sleep(time.Millisecond)
		}
	}
}

// sendNumbered sends n packets numbered 0..n-1 from c to dst, one every pace.
func sendNumbered(t *testing.T, c *Client, dst key.Public, n int, pace time.Duration) {
	t.Helper()
	for i := range n {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(i))
		if err := c.Send(dst, b[:]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(pace)
	}
}

// smallSendBuffers sets a small kernel send buffer on every accepted connection.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetWriteBuffer(64 << 10)
	}
	return nc, err
}

// newRelaySmallSendBuffers is newRelay whose sockets have small send buffers, so that its
// writes to a slow reader go steadily at the reader's pace; with megabytes of socket buffer,
// Linux wakes a blocked writer only once half of it has drained, which at a slow reader's pace
// stalls the writer for seconds and makes any queue overflow, whatever its policy.
func newRelaySmallSendBuffers(t *testing.T, opts *ServerOptions) *relay {
	if opts == nil {
		opts = &ServerOptions{}
	}
	opts.Logf = t.Logf
	s := NewServer(key.NewPrivate(), opts)
	hs := httptest.NewUnstartedServer(mux(s))
	hs.Listener = smallSendBuffers{hs.Listener}
	hs.Start()
	r := &relay{Server: s, hs: hs, url: hs.URL + "/derp"}
	t.Cleanup(r.close)
	return r
}

// TestFloodingSenderCannotStarvePoliteOne: while one client floods a receiver that reads far
// more slowly than the flood comes (tens of thousands of packets a second against a few
// thousand), a second client's steady low-rate packets (100 a second) to the same receiver
// still arrive (at least 95% of them; the relay drops the flooder's packets first), and the
// drops are counted under their reasons. (The queue shares the receiver's pace between its
// sources, so the polite rate stays well below half of what a loaded machine's slow reader
// takes: measured 700–900 packets a second with both cores busy.)
func TestFloodingSenderCannotStarvePoliteOne(t *testing.T) {
	leakcheck.Check(t)
	r := newRelaySmallSendBuffers(t, nil)
	xKey := key.NewPrivate()
	x := dialRaw(t, r.url)
	x.nc.(*net.TCPConn).SetReadBuffer(64 << 10)
	x.login(xKey)
	sr := readSlowly(x, 50*time.Microsecond)

	f := dialRaw(t, r.url)
	f.login(key.NewPrivate())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go flood(f, xKey.Public(), 64, true, stop, &wg)
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	eventually.True(t, "the receiver's queue overflowing", func() bool { return r.m.dropQueueFull.Load() > 0 })

	polite, _ := newClient(t, r.url, false)
	polite.ensureStarted()
	eventually.True(t, "polite connected", func() bool { return r.Stats(polite.PublicKey()).Connections == 1 })
	const n = 200
	sendNumbered(t, polite, xKey.Public(), n, 10*time.Millisecond)
	close(stop)
	wg.Wait()
	pk := polite.PublicKey()
	// What is in the socket buffers still arrives: wait until the receiver has read it all.
	// Stop once nothing more has arrived for 3 s (a loaded machine can stall the reader for
	// a while; what is still in the buffers has not been dropped).
	deadline := time.Now().Add(2 * hangGuard)
	for last, since := -1, time.Now(); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		all := sr.all()
		if sr.count(pk) == n {
			break
		}
		if all != last {
			last, since = all, time.Now()
		} else if time.Since(since) > 3*time.Second {
			break
		}
	}
	got := sr.count(pk)
	flooded := sr.count(f.priv.Public())
	t.Logf("polite %d/%d arrived; flooder %d arrived, %d queue_full drops, %d fair_share drops",
		got, n, flooded, r.m.dropQueueFull.Load(), r.m.dropFairShare.Load())
	if ps := r.Stats(pk); ps.PacketsIn != n {
		t.Fatalf("relay saw %d packets from the polite client, want %d (the client dropped %d)", ps.PacketsIn, n, polite.sendDrops.Load())
	}
	if got < n*95/100 {
		t.Fatalf("only %d of the polite client's %d packets arrived during the flood; want at least 95%%", got, n)
	}
}

// TestFloodingClientIsThrottled: with ClientFramesPerSecond set, a client sending as fast as it
// can is read no faster than that (plus the burst), the pauses are counted, and another pair on
// the relay keeps exchanging packets meanwhile.
func TestFloodingClientIsThrottled(t *testing.T) {
	leakcheck.Check(t)
	const rate = 2000
	r := newRelay(t, &ServerOptions{ClientFramesPerSecond: rate})
	sink := dialRaw(t, r.url)
	sinkKey := key.NewPrivate()
	sink.login(sinkKey)
	readSlowly(sink, 0)

	f := dialRaw(t, r.url)
	f.login(key.NewPrivate())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	start := time.Now()
	go flood(f, sinkKey.Public(), 64, false, stop, &wg)

	a, _ := newClient(t, r.url, false)
	b, _ := newClient(t, r.url, true)
	b.ensureStarted()
	eventually.True(t, "b connected", func() bool { return r.Stats(b.PublicKey()).Connections == 1 })
	for i := range 50 {
		a.Send(b.PublicKey(), []byte{byte(i)})
		if _, got := recv(t, b); got[0] != byte(i) {
			t.Fatalf("packet %d arrived as %d", i, got[0])
		}
	}
	time.Sleep(300 * time.Millisecond)
	in := r.Stats(f.priv.Public()).PacketsIn
	elapsed := time.Since(start)
	close(stop)
	f.nc.Close() // the flooder may be blocked writing to a relay that stopped reading it
	wg.Wait()
	// The bucket holds a tenth of a second (200 frames, at least 64); the relay reads at most
	// twice that beyond the rate.
	limit := uint64(elapsed.Seconds()*rate) + 2*rate/10 + 1
	t.Logf("flooder read %d frames in %v (limit %d); %d pauses", in, elapsed, limit, r.m.throttled.Load())
	if in > limit {
		t.Fatalf("relay read %d frames from the flooder in %v; the limit allows %d", in, elapsed, limit)
	}
	if r.m.throttled.Load() == 0 {
		t.Fatal("no throttling counted")
	}
	if in == 0 {
		t.Fatal("the flooder got nothing through at all")
	}
}
