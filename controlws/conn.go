package controlws

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/flynn/noise"

	"tsconnect/key"
)

// maxRetainedWriteBuf is the largest write buffer a Conn keeps between messages.
const maxRetainedWriteBuf = 4 << 10

// Conn is an established control connection, the same type at both ends: envelopes in and out over Noise.
// Reads must come from one goroutine at a time; writes may come from many.
type Conn struct {
	nc      net.Conn
	peer    key.Public
	version int // negotiated; the prologue bound it

	rmu   sync.Mutex
	br    *bufio.Reader
	rx    *noise.CipherState
	plain []byte // decrypted bytes not yet consumed
	pbuf  []byte // backing array of plain, reused once plain is consumed
	rerr  error  // sticky: once the stream broke, it stays broken

	wmu  sync.Mutex
	tx   *noise.CipherState
	wbuf []byte
	werr error

	closeOnce sync.Once
	closeErr  error
}

func newConn(nc net.Conn, br *bufio.Reader, peer key.Public, tx, rx *noise.CipherState, version int) *Conn {
	return &Conn{nc: nc, br: br, peer: peer, tx: tx, rx: rx, version: version}
}

// Version returns the protocol version the two ends negotiated (MinVersion to Version); every
// envelope on the connection carries it.
func (c *Conn) Version() int { return c.version }

// PeerKey returns the other end's static key: the client's machine key on the server, the server key on the client.
func (c *Conn) PeerKey() key.Public { return c.peer }

// Close closes the underlying connection; blocked reads and writes return errors.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.nc.Close() })
	return c.closeErr
}

// ReadEnvelope reads the next envelope. It returns io.EOF when the peer closed the connection between
// envelopes, and an error (never a panic) on anything malformed; after an error the Conn is unusable.
// It checks the envelope's shape, not its version: V is the handler's to judge (CodeUnsupportedVer).
func (c *Conn) ReadEnvelope() (*Envelope, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.rerr != nil {
		return nil, c.rerr
	}
	env, err := readFrame(plainReader{c})
	if err != nil {
		c.rerr = err
		return nil, err
	}
	return env, nil
}

// WriteEnvelope sends env (V defaults to the connection's Version). It is safe for concurrent use; each envelope goes out whole.
func (c *Conn) WriteEnvelope(env *Envelope) error {
	e := *env
	if e.V == 0 {
		e.V = c.version
	}
	frame, err := appendFrame(nil, &e)
	if err != nil {
		return err
	}
	return c.writePlain(frame)
}

// Send is WriteEnvelope(NewEnvelope(typ, id, body)).
func (c *Conn) Send(typ string, id uint64, body any) error {
	env, err := NewEnvelope(typ, id, body)
	if err != nil {
		return err
	}
	return c.WriteEnvelope(env)
}

// writePlain encrypts b, split over as many transport messages as it needs.
func (c *Conn) writePlain(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for len(b) > 0 {
		n := min(len(b), maxChunk)
		if err := c.writeNoiseLocked(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// writeNoise sends one transport message holding chunk (which may be empty).
func (c *Conn) writeNoise(chunk []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeNoiseLocked(chunk)
}

func (c *Conn) writeNoiseLocked(chunk []byte) error {
	if c.werr != nil {
		return c.werr
	}
	buf := append(c.wbuf[:0], 0, 0)
	buf, err := c.tx.Encrypt(buf, nil, chunk)
	if err == nil {
		binary.BigEndian.PutUint16(buf, uint16(len(buf)-wireHeaderLen))
		_, err = c.nc.Write(buf)
	}
	// Keep a small buffer for the next message; a large one (a full map's chunks) goes back
	// to the garbage collector, so 10,000 idle connections do not each hold 64 KiB.
	if cap(buf) <= maxRetainedWriteBuf {
		c.wbuf = buf
	} else {
		c.wbuf = nil
	}
	if err != nil {
		c.werr = fmt.Errorf("controlws: write: %w", err)
		return c.werr
	}
	return nil
}

// readNoise reads one transport message and makes its plaintext c.plain; c.plain must be consumed.
func (c *Conn) readNoise() error {
	msg, err := readWire(c.br)
	if err != nil {
		return err
	}
	if len(msg) < tagLen {
		return fmt.Errorf("controlws: transport message of %d bytes is shorter than its tag", len(msg))
	}
	out, err := c.rx.Decrypt(c.pbuf[:0], nil, msg)
	if err != nil {
		return fmt.Errorf("controlws: transport message did not decrypt: %w", err)
	}
	c.plain, c.pbuf = out, out
	return nil
}

// plainReader is the decrypted byte stream of a Conn, for readFrame. Callers hold c.rmu.
type plainReader struct{ c *Conn }

func (r plainReader) Read(p []byte) (int, error) {
	c := r.c
	for len(c.plain) == 0 {
		if err := c.readNoise(); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return 0, fmt.Errorf("controlws: connection closed: %w", err)
			}
			return 0, err
		}
	}
	n := copy(p, c.plain)
	c.plain = c.plain[n:]
	return n, nil
}

var _ io.Reader = plainReader{}
