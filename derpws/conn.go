package derpws

import (
	"net"
	"time"
)

// Buffer sizes per connection. They bound the relay's memory per client (about 32 KiB),
// while a write buffer holds a dozen 1 KiB packets so a busy queue goes out in few syscalls.
const (
	readBufSize  = 16 << 10
	writeBufSize = 16 << 10
)

// deadlineWriter sets a write deadline before every write reaching the connection, so a peer
// that stops reading fails the write after timeout instead of stalling its writer forever.
// A bufio.Writer sits above it, so this costs one deadline per buffer, not per frame.
type deadlineWriter struct {
	nc      net.Conn
	timeout time.Duration
}

func (w deadlineWriter) Write(p []byte) (int, error) {
	w.nc.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.nc.Write(p)
}
