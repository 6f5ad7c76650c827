package filter

import (
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// rejectRate is how many refused connection attempts a second the filter answers with a
// reset (Options.Reject); beyond it they are dropped unanswered, so a peer cannot make the
// node send more than this.
const rejectRate = 50

// rateWindow counts events in the current second.
type rateWindow struct {
	start time.Time
	n     int
}

// take reports whether one more event fits in max per second, counting it if so.
func (w *rateWindow) take(now time.Time, max int) bool {
	if now.Sub(w.start) >= time.Second || now.Before(w.start) {
		w.start, w.n = now, 0
	}
	if w.n >= max {
		return false
	}
	w.n++
	return true
}

// reset builds the TCP RST|ACK answering syn (RFC 9293 3.10.7.1: a segment without ACK gets
// seq 0 and ack SEG.SEQ+1), addressed back to its sender: the dialer's stack fails the
// connection with "connection refused". gVisor's header package lays out and sums it.
func reset(syn packet) []byte {
	ipLen := header.IPv4MinimumSize
	if syn.src.Is6() {
		ipLen = header.IPv6MinimumSize
	}
	b := make([]byte, ipLen+header.TCPMinimumSize)
	src, dst := tcpip.AddrFromSlice(syn.dst.AsSlice()), tcpip.AddrFromSlice(syn.src.AsSlice())
	if syn.src.Is6() {
		header.IPv6(b).Encode(&header.IPv6Fields{
			PayloadLength:     header.TCPMinimumSize,
			TransportProtocol: header.TCPProtocolNumber,
			HopLimit:          64,
			SrcAddr:           src,
			DstAddr:           dst,
		})
	} else {
		ip := header.IPv4(b)
		ip.Encode(&header.IPv4Fields{
			TotalLength: uint16(len(b)),
			TTL:         64,
			Protocol:    uint8(header.TCPProtocolNumber),
			SrcAddr:     src,
			DstAddr:     dst,
		})
		ip.SetChecksum(^ip.CalculateChecksum())
	}
	t := header.TCP(b[ipLen:])
	t.Encode(&header.TCPFields{
		SrcPort:    syn.dport,
		DstPort:    syn.sport,
		AckNum:     syn.tcpSeq + 1,
		DataOffset: header.TCPMinimumSize,
		Flags:      header.TCPFlagRst | header.TCPFlagAck,
	})
	sum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, header.TCPMinimumSize)
	t.SetChecksum(^t.CalculateChecksum(sum))
	return b
}
