//go:build !js

package derpws

import (
	"net"
	"sync"
	"testing"
	"time"

	"tsconnect/internal/eventually"
	"tsconnect/internal/leakcheck"
	"tsconnect/key"
)

// TestQueueBudgetBoundsAllQueues: twenty queues flooded by one source hold together no more
// than the budget beyond their reserves (the flood's packets dropped as relay_queue_full), a
// queue of another destination still takes its reserve's worth without a drop, and emptying
// the queues gives the whole budget back.
func TestQueueBudgetBoundsAllQueues(t *testing.T) {
	const budgetBytes = 1 << 20
	budget := &queueBudget{max: budgetBytes}
	flood, honest := key.NewPrivate().Public(), key.NewPrivate().Public()
	var queues []*sendQueue
	relayFull := 0
	for range 20 {
		q := newSendQueue(sendQueueDepth, sendQueueBytes, budget)
		queues = append(queues, q)
		for range 400 {
			n, why := q.enqueue(packet{peer: flood, buf: getBuf(1200)})
			if why == dropRelayFull {
				relayFull += n
			}
		}
	}
	total := 0
	for _, q := range queues {
		total += q.bytes
	}
	t.Logf("20 flooded queues hold %d KiB, %d KiB drawn from the budget, %d packets dropped as relay_queue_full", total>>10, budget.queued()>>10, relayFull)
	if got := budget.queued(); got > budgetBytes {
		t.Fatalf("budget %d bytes drawn, over its %d bound", got, budgetBytes)
	}
	if bound := budgetBytes + len(queues)*queueReserve; total > bound {
		t.Fatalf("queues hold %d bytes, over the budget plus their reserves, %d", total, bound)
	}
	if relayFull == 0 {
		t.Fatal("no packet dropped for the spent budget")
	}

	q := newSendQueue(sendQueueDepth, sendQueueBytes, budget)
	const fit = queueReserve / 2048
	for i := range fit {
		if n, why := q.enqueue(packet{peer: honest, buf: getBuf(1200)}); n != 0 {
			t.Fatalf("honest packet %d with the budget spent: %d dropped (reason %d), want none within the reserve", i, n, why)
		}
	}
	if got := len(q.take(nil, sendQueueDepth)); got != fit {
		t.Fatalf("honest queue gave %d packets, want %d", got, fit)
	}
	for _, fq := range queues {
		for len(fq.take(nil, writeBatch)) > 0 {
		}
	}
	queues[0].enqueue(packet{peer: flood, buf: getBuf(1200)})
	queues[0].close()
	if got := budget.queued(); got != 0 {
		t.Fatalf("empty queues still draw %d bytes of the budget", got)
	}
}

// TestRelayFloodIsBoundedOthersServed: a party floods six receivers of its own that read
// slowly, so their queues fill; with MaxQueuedBytes at 256 KiB the relay's queued bytes stay
// within it plus each queue's reserve (sampled throughout), the excess is dropped as
// relay_queue_full, and a polite client's packets to another receiver all arrive meanwhile.
func TestRelayFloodIsBoundedOthersServed(t *testing.T) {
	leakcheck.Check(t)
	const budgetBytes = 256 << 10
	r := newRelaySmallSendBuffers(t, &ServerOptions{MaxQueuedBytes: budgetBytes})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	const sinks = 6
	for range sinks {
		sk := key.NewPrivate()
		sink := dialRaw(t, r.url)
		sink.nc.(*net.TCPConn).SetReadBuffer(64 << 10)
		sink.login(sk)
		readSlowly(sink, 2*time.Millisecond)
		f := dialRaw(t, r.url)
		f.login(key.NewPrivate())
		wg.Add(1)
		go flood(f, sk.Public(), 64, true, stop, &wg)
	}
	eventually.True(t, "the budget spent", func() bool { return r.m.dropRelayFull.Load() > 0 })

	xKey := key.NewPrivate()
	x := dialRaw(t, r.url)
	x.login(xKey)
	sr := readSlowly(x, 0)
	polite, _ := newClient(t, r.url, false)
	polite.ensureStarted()
	eventually.True(t, "polite connected", func() bool { return r.Stats(polite.PublicKey()).Connections == 1 })

	// The relay's queued bytes, sampled every few milliseconds while the flood goes on.
	var worst, worstDrawn int64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Millisecond):
			}
			total := int64(0)
			r.mu.RLock()
			for _, c := range r.clients {
				c.q.mu.Lock()
				total += int64(c.q.bytes)
				c.q.mu.Unlock()
			}
			r.mu.RUnlock()
			worst = max(worst, total)
			worstDrawn = max(worstDrawn, r.queued.queued())
		}
	}()
	const n = 200
	sendNumbered(t, polite, xKey.Public(), n, 5*time.Millisecond)
	close(stop)
	wg.Wait()
	<-sampled
	pk := polite.PublicKey()
	eventually.True(t, "the polite packets read", func() bool { return sr.count(pk) >= n })
	t.Logf("queued at most %d KiB (%d KiB drawn from the 256 KiB budget); %d relay_queue_full drops; polite %d/%d arrived",
		worst>>10, worstDrawn>>10, r.m.dropRelayFull.Load(), sr.count(pk), n)
	if worstDrawn > budgetBytes {
		t.Fatalf("%d bytes drawn from the budget, over MaxQueuedBytes %d", worstDrawn, budgetBytes)
	}
	if bound := int64(budgetBytes + (2*sinks+2)*queueReserve); worst > bound {
		t.Fatalf("the relay queued %d bytes, over MaxQueuedBytes plus the reserves, %d", worst, bound)
	}
}
