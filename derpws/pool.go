package derpws

import (
	"sync"

	"tsconnect/key"
)

// pooledBufSize is the capacity of pooled packet buffers: a WireGuard packet of a 1280–1500
// MTU tunnel with its overhead fits. Larger packets get a buffer of their own.
const pooledBufSize = 2048

// pktBuf holds one packet on its way through a queue; small ones are recycled.
type pktBuf struct{ b []byte }

var bufPool = sync.Pool{New: func() any { return &pktBuf{b: make([]byte, 0, pooledBufSize)} }}

// getBuf returns a buffer of length n.
func getBuf(n int) *pktBuf {
	if n > pooledBufSize {
		return &pktBuf{b: make([]byte, n)}
	}
	pb := bufPool.Get().(*pktBuf)
	pb.b = pb.b[:n]
	return pb
}

// putBuf recycles pb; the caller must not use it afterwards.
func putBuf(pb *pktBuf) {
	if cap(pb.b) == pooledBufSize {
		bufPool.Put(pb)
	}
}

// packet is a queued packet with its peer key (the destination on a client, the source on a server).
// On a mesh client, fwd marks a ForwardPacket whose original sender is src. On a client,
// queued is when Send queued it while disconnected (Unix nanoseconds; 0 while connected).
type packet struct {
	peer   key.Public
	buf    *pktBuf
	src    key.Public
	fwd    bool
	queued int64
}
