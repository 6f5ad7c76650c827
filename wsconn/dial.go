//go:build !js

package wsconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Dial opens a WebSocket to url (ws, wss, http or https) asking for subprotocol ("" for none) and
// returns it as a byte stream: writes become binary messages, reads concatenate received ones, so a
// frame may span messages and a message may hold several. A server that does not accept the
// subprotocol fails the dial. ctx bounds the dial only; Close ends the conn at once, without the
// close handshake.
func Dial(ctx context.Context, url, subprotocol string) (net.Conn, error) {
	return DialLimit(ctx, url, subprotocol, 0)
}

// DialLimit is Dial with a per-message limit: a received message over maxMessage bytes fails the
// connection (0 means no limit).
func DialLimit(ctx context.Context, url, subprotocol string, maxMessage int64) (net.Conn, error) {
	return DialLimitClient(ctx, url, subprotocol, maxMessage, nil)
}

// DialLimitClient is DialLimit through HTTP client hc (nil: net/http's default), e.g. one
// that tries each address of a host name (internal/dialaddrs).
func DialLimitClient(ctx context.Context, url, subprotocol string, maxMessage int64, hc *http.Client) (net.Conn, error) {
	u := wsURL(url)
	opts := &websocket.DialOptions{
		// Callers carry ciphertext (WireGuard, Noise): compression would cost CPU and save nothing.
		CompressionMode: websocket.CompressionDisabled,
		HTTPClient:      hc,
	}
	if subprotocol != "" {
		opts.Subprotocols = []string{subprotocol}
	}
	wc, _, err := websocket.Dial(ctx, u, opts)
	if err != nil {
		return nil, fmt.Errorf("wsconn: connecting to %s: %w", u, err)
	}
	if wc.Subprotocol() != subprotocol {
		wc.CloseNow()
		return nil, subprotocolError(u, subprotocol)
	}
	cctx, cancel := context.WithCancel(context.Background())
	nc := websocket.NetConn(cctx, wc, websocket.MessageBinary)
	if maxMessage > 0 {
		wc.SetReadLimit(maxMessage) // after NetConn, which lifts the limit
	}
	return &conn{Conn: nc, wc: wc, cancel: cancel}, nil
}

// conn is coder/websocket's net.Conn adapter with a Close that does not wait and timeouts that
// say so: the adapter reports a deadline that fires mid-call as "context canceled".
type conn struct {
	net.Conn
	wc     *websocket.Conn
	cancel context.CancelFunc

	mu                   sync.Mutex
	rdeadline, wdeadline time.Time
}

// Read reads received bytes; past the read deadline its error wraps os.ErrDeadlineExceeded.
func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	return n, c.timeoutErr(err, &c.rdeadline)
}

// Write sends p as one binary message; past the write deadline its error wraps os.ErrDeadlineExceeded.
func (c *conn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	return n, c.timeoutErr(err, &c.wdeadline)
}

// timeoutErr marks err as a timeout when the deadline *dl has passed.
func (c *conn) timeoutErr(err error, dl *time.Time) error {
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	c.mu.Lock()
	d := *dl
	c.mu.Unlock()
	if !d.IsZero() && !time.Now().Before(d) {
		return fmt.Errorf("%w (%v)", os.ErrDeadlineExceeded, err)
	}
	return err
}

// SetDeadline sets the read and write deadlines.
func (c *conn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the read deadline; one that fires during a Read ends the connection.
func (c *conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdeadline = t
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

// SetWriteDeadline sets the write deadline; one that fires during a Write ends the connection.
func (c *conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.wdeadline = t
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

// Close closes at once, without the close handshake, which would wait seconds for a peer that
// stopped reading.
func (c *conn) Close() error {
	c.cancel()
	return c.wc.CloseNow()
}
