package filexfer

import (
	"io"
	"sync"
)

// Channel turns a channel that delivers its bytes by callback (the main wasm's SFTP channel,
// through the page's Worker) into the io.ReadWriteCloser an SFTP client reads. Deliver never
// blocks; the sender's window bounds what waits here, since ack returns credit only once the
// client has read the bytes.
type Channel struct {
	send  func(p []byte)
	ack   func(n int)
	close func()

	mu     sync.Mutex
	cond   *sync.Cond
	queue  [][]byte
	err    error
	closed bool
}

// NewChannel returns a Channel that writes with send (which must copy or own p), returns read
// credit with ack and ends the underlying channel with close.
func NewChannel(send func(p []byte), ack func(n int), close func()) *Channel {
	c := &Channel{send: send, ack: ack, close: close}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// Deliver queues bytes that arrived (p is copied).
func (c *Channel) Deliver(p []byte) {
	c.mu.Lock()
	if c.err == nil {
		c.queue = append(c.queue, append([]byte(nil), p...))
	}
	c.mu.Unlock()
	c.cond.Broadcast()
}

// End says the channel ended (err nil: cleanly); reads return what is queued, then the end.
func (c *Channel) End(err error) {
	if err == nil {
		err = io.EOF
	}
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.cond.Broadcast()
}

// Read returns queued bytes, waiting for some.
func (c *Channel) Read(p []byte) (int, error) {
	c.mu.Lock()
	for len(c.queue) == 0 && c.err == nil {
		c.cond.Wait()
	}
	if len(c.queue) == 0 {
		err := c.err
		c.mu.Unlock()
		return 0, err
	}
	n := copy(p, c.queue[0])
	if n == len(c.queue[0]) {
		c.queue = c.queue[1:]
	} else {
		c.queue[0] = c.queue[0][n:]
	}
	c.mu.Unlock()
	c.ack(n)
	return n, nil
}

// Write sends p.
func (c *Channel) Write(p []byte) (int, error) {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return 0, io.ErrClosedPipe
	}
	c.send(append([]byte(nil), p...))
	return len(p), nil
}

// Close ends the channel.
func (c *Channel) Close() error {
	c.mu.Lock()
	closed := c.closed
	c.closed = true
	c.mu.Unlock()
	c.End(io.ErrClosedPipe)
	if !closed {
		c.close()
	}
	return nil
}
