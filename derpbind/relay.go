package derpbind

import "tsconnect/key"

// Relay is what derpbind needs of a DERP client (derpws.Client satisfies it).
//
// Send never blocks: it queues pkt for dst (dropping when its queue is full) and returns; it
// must not retain pkt after returning, because the caller reuses the buffer. Send to an
// unknown or absent peer is not an error (the relay drops it, as DERP does).
//
// Recv blocks until a packet arrives and returns the authenticated sender and the packet,
// which then belongs to the caller. Once the Relay is closed, Recv returns net.ErrClosed;
// any error from Recv is treated as final.
type Relay interface {
	Send(dst key.Public, pkt []byte) error         // never blocks
	Recv() (src key.Public, pkt []byte, err error) // blocks; net.ErrClosed once closed
}
