//go:build !js

package derpws

import (
	"testing"

	"tsconnect/key"
)

// TestSendQueueBoundsBytes: large packets are bounded by the queue's byte limit as well as
// its count, dropping the heaviest source's oldest first, and a light source keeps its packet.
func TestSendQueueBoundsBytes(t *testing.T) {
	const maxBytes = 4 * MaxPacketSize
	q := newSendQueue(512, maxBytes, nil)
	flood, light := key.NewPrivate().Public(), key.NewPrivate().Public()
	q.enqueue(packet{peer: light, buf: getBuf(100)})
	drops := 0
	for range 40 {
		n, why := q.enqueue(packet{peer: flood, buf: getBuf(MaxPacketSize)})
		if n > 0 && why != dropOwnShare {
			t.Fatalf("a flood packet dropped for reason %d, want its own share", why)
		}
		drops += n
		if q.bytes > maxBytes {
			t.Fatalf("queue holds %d bytes of buffers, over its %d limit", q.bytes, maxBytes)
		}
	}
	if drops < 35 {
		t.Fatalf("%d drops of 40 packets of 64 KiB into a 256 KiB queue, want at least 35", drops)
	}
	got := q.take(nil, 512)
	lights := 0
	for _, p := range got {
		if p.peer == light {
			lights++
		}
	}
	if lights != 1 || len(got) > 4 {
		t.Fatalf("took %d packets, %d of the light source; want at most 4, and its one", len(got), lights)
	}
	if q.bytes != 0 || q.n != 0 {
		t.Fatalf("empty queue holds %d packets, %d bytes", q.n, q.bytes)
	}
}

// TestSendQueueDepth: small packets are bounded by the count, each arrival past it dropping one.
func TestSendQueueDepth(t *testing.T) {
	q := newSendQueue(8, 1<<20, nil)
	src := key.NewPrivate().Public()
	for i := range 20 {
		n, _ := q.enqueue(packet{peer: src, buf: getBuf(1200)})
		if want := min(1, max(0, i-7)); n != want {
			t.Fatalf("packet %d: %d dropped, want %d", i, n, want)
		}
	}
	if got := len(q.take(nil, 100)); got != 8 {
		t.Fatalf("took %d, want the depth, 8", got)
	}
}
