package tunstack

import (
	"os"

	"golang.zx2c4.com/wireguard/tun"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

var _ tun.Device = (*Stack)(nil)

// File returns nil: there is no kernel device.
func (s *Stack) File() *os.File { return nil }

// Name returns "tunstack".
func (s *Stack) Name() (string, error) {
	if s.closed.Load() {
		return "", errClosed
	}
	return "tunstack", nil
}

// MTU returns the MTU the Stack was made with.
func (s *Stack) MTU() (int, error) {
	if s.closed.Load() {
		return 0, errClosed
	}
	return s.mtu, nil
}

// Events returns the device's event channel: it holds tun.EventUp from New and is closed by Close.
func (s *Stack) Events() <-chan tun.Event { return s.events }

// BatchSize returns the most packets Read returns and Write is expected to take at once.
func (s *Stack) BatchSize() int { return batchSize }

// Read waits for the stack's next outbound packet, then takes as many more as are ready,
// up to len(bufs). Packet i is copied to bufs[i][offset:] and its length set in sizes[i].
// After Close (including during a blocked Read) it returns os.ErrClosed.
func (s *Stack) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n := 0
	for n == 0 {
		pkt := s.link.ReadContext(s.ctx)
		for pkt != nil {
			if size, ok := copyPacket(bufs[n][offset:], pkt); ok {
				sizes[n] = size
				n++
			} else {
				s.logf("tunstack: dropped an outbound packet of %d bytes: read buffer holds %d", pkt.Size(), len(bufs[n])-offset)
			}
			pkt.DecRef()
			if n == len(bufs) {
				break
			}
			pkt = s.link.Read()
		}
		if n == 0 && s.closed.Load() {
			return 0, errClosed
		}
	}
	return n, nil
}

// copyPacket copies pkt's bytes into dst, reporting false if they do not fit.
func copyPacket(dst []byte, pkt *stack.PacketBuffer) (int, bool) {
	size := pkt.Size()
	if size > len(dst) {
		return 0, false
	}
	n := 0
	for _, b := range pkt.AsSlices() {
		n += copy(dst[n:], b)
	}
	return n, true
}

// Write delivers packets to the stack: packet i is bufs[i][offset:]. Empty packets and
// packets that are neither IPv4 nor IPv6 are skipped. It returns len(bufs), or
// os.ErrClosed after Close.
//
// Write is where inbound packets enter the node; a packet filter belongs in front of it,
// as a tun.Device that wraps the Stack (see package engine).
func (s *Stack) Write(bufs [][]byte, offset int) (int, error) {
	if s.closed.Load() {
		return 0, errClosed
	}
	for _, b := range bufs {
		pkt := b[offset:]
		if len(pkt) == 0 {
			continue
		}
		var proto = header.IPv4ProtocolNumber
		switch pkt[0] >> 4 {
		case 4:
		case 6:
			proto = header.IPv6ProtocolNumber
		default:
			continue
		}
		pb := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(pkt)})
		s.link.InjectInbound(proto, pb)
		pb.DecRef()
	}
	return len(bufs), nil
}

// Send queues pkt (an IP packet the node sends, e.g. a filter's reset) as if the stack had
// written it: the next Read returns it. It never blocks; with the outbound queue full the
// packet is dropped.
func (s *Stack) Send(pkt []byte) {
	if s.closed.Load() {
		return
	}
	pb := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(pkt)})
	var l stack.PacketBufferList
	l.PushBack(pb)
	s.link.WritePackets(l)
	pb.DecRef()
}
