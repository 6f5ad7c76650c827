package filter

import (
	"encoding/binary"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"

	"tsconnect/policy/rules"
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
// connection with "connection refused".
func reset(syn packet) []byte {
	const tcpLen = 20
	ipLen := 20
	if syn.src.Is6() {
		ipLen = 40
	}
	b := make([]byte, ipLen+tcpLen)
	src, dst := syn.dst.AsSlice(), syn.src.AsSlice()
	if ipLen == 20 {
		b[0] = 0x45
		binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
		b[8], b[9] = 64, byte(rules.ProtoTCP)
		copy(b[12:16], src)
		copy(b[16:20], dst)
		binary.BigEndian.PutUint16(b[10:12], ^checksum.Checksum(b[:20], 0))
	} else {
		b[0] = 0x60
		binary.BigEndian.PutUint16(b[4:6], tcpLen)
		b[6], b[7] = byte(rules.ProtoTCP), 64
		copy(b[8:24], src)
		copy(b[24:40], dst)
	}
	t := b[ipLen:]
	binary.BigEndian.PutUint16(t[0:2], syn.dport)
	binary.BigEndian.PutUint16(t[2:4], syn.sport)
	binary.BigEndian.PutUint32(t[8:12], syn.tcpSeq+1)
	t[12], t[13] = 5<<4, tcpRST|tcpACK
	// The pseudo-header: addresses, protocol and TCP length.
	sum := checksum.Checksum(src, 0)
	sum = checksum.Checksum(dst, sum)
	sum = checksum.Combine(sum, uint16(rules.ProtoTCP))
	sum = checksum.Combine(sum, tcpLen)
	binary.BigEndian.PutUint16(t[16:18], ^checksum.Checksum(t, sum))
	return b
}
