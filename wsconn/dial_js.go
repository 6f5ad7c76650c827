//go:build js

package wsconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall/js"
	"time"
)

// The second syscall/js binding of the wasm (besides wasm/bridge_js.go): coder/websocket's
// browser build costs 2.3 MB of net/http+TLS. Its handlers only copy bytes and record state, and
// never block; no Go call here waits on JavaScript (docs/architecture.md, single-threaded wasm).

var (
	uint8Array     = js.Global().Get("Uint8Array")
	arrayBuffer    = js.Global().Get("ArrayBuffer")
	messageChannel = js.Global().Get("MessageChannel")
)

// maxBuffered is how many bytes the socket may hold unsent before Write waits (on a Go timer, so
// JavaScript runs meanwhile) for it to drain; it bounds memory when the network is slower than the writer.
const maxBuffered = 4 << 20

// Close codes sent: normal closure, and one of the codes a page may pick for a failed connection.
const (
	closeNormal = 1000
	closeFailed = 4000
)

var handlerNames = []string{"onopen", "onerror", "onclose", "onmessage"}

// Dial opens a WebSocket to url (ws, wss, http or https) asking for subprotocol ("" for none) and
// returns it as a byte stream: writes become binary messages, reads concatenate received ones, so a
// frame may span messages and a message may hold several. A server that does not accept the
// subprotocol fails the dial. ctx bounds the dial only; Close ends the conn at once.
func Dial(ctx context.Context, url, subprotocol string) (net.Conn, error) {
	return DialLimit(ctx, url, subprotocol, 0)
}

// DialLimit is Dial with a per-message limit: a received message over maxMessage bytes fails the
// connection (0 means no limit).
func DialLimit(ctx context.Context, url, subprotocol string, maxMessage int64) (net.Conn, error) {
	u := wsURL(url)
	ctor := js.Global().Get("WebSocket")
	if ctor.Type() != js.TypeFunction {
		return nil, fmt.Errorf("wsconn: connecting to %s: this JavaScript runtime has no WebSocket (node 20 needs --experimental-websocket)", u)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("wsconn: connecting to %s: %w", u, context.Cause(ctx))
	}
	c := &conn{url: u, maxMessage: maxMessage, q: newRecvQueue(), dialed: make(chan struct{})}
	err := catch(func() {
		if subprotocol != "" {
			c.ws = ctor.New(u, subprotocol)
		} else {
			c.ws = ctor.New(u)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("wsconn: connecting to %s: %w", u, err)
	}
	c.ws.Set("binaryType", "arraybuffer")
	c.funcs = []js.Func{js.FuncOf(c.onOpen), js.FuncOf(c.onError), js.FuncOf(c.onClose), js.FuncOf(c.onMessage)}
	for i, name := range handlerNames {
		c.ws.Set(name, c.funcs[i])
	}
	c.flushFunc = js.FuncOf(c.onFlush)
	if messageChannel.Type() == js.TypeFunction {
		ch := messageChannel.New()
		c.flushRecv, c.flushPort = ch.Get("port1"), ch.Get("port2")
		c.flushRecv.Set("onmessage", c.flushFunc)
	}
	select {
	case <-c.dialed:
	case <-ctx.Done():
		c.Close()
		return nil, fmt.Errorf("wsconn: connecting to %s: %w", u, context.Cause(ctx))
	}
	c.mu.Lock()
	err = c.dialErr
	c.mu.Unlock()
	if err != nil {
		c.Close()
		return nil, err
	}
	if got := c.ws.Get("protocol").String(); got != subprotocol {
		c.Close()
		return nil, subprotocolError(u, subprotocol)
	}
	return c, nil
}

// conn is a net.Conn over a JavaScript WebSocket.
type conn struct {
	ws         js.Value
	url        string
	maxMessage int64
	funcs      []js.Func
	q          *recvQueue
	wmu        sync.Mutex // one Write at a time, so messages keep their order
	flushFunc  js.Func    // onFlush, queued as a task (or microtask) by the first Write after a send
	flushPort  js.Value   // a MessageChannel's port2 whose message runs flushFunc on port1 as a task; undefined: microtasks
	flushRecv  js.Value   // that channel's port1

	omu    sync.Mutex
	out    []byte // written, not yet sent: one message once Go pauses
	queued bool   // a flush microtask is queued (flushFunc is released only when none is)
	shut   bool   // Close ran: nothing more is queued

	mu        sync.Mutex
	dialed    chan struct{} // closed when the dial ends: open, failed or closed
	open      bool          // the open event came
	dialErr   error         // why the dial failed
	werr      error         // why writes fail: set when the connection ends
	wdeadline time.Time
	closed    bool // Close was called
}

// endDial closes c.dialed once; c.mu is held.
func (c *conn) endDial() {
	select {
	case <-c.dialed:
	default:
		close(c.dialed)
	}
}

func (c *conn) onOpen(js.Value, []js.Value) any {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.open = true
	c.endDial()
	return nil
}

// onError ends the dial, or the connection, with what the event says: browsers follow it with a
// close event, node's WebSocket (version 20) does not.
func (c *conn) onError(_ js.Value, args []js.Value) any {
	detail := "connection failed"
	if len(args) > 0 {
		if m := eventMessage(args[0]); m != "" {
			detail = m
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.open {
		if c.dialErr == nil {
			c.dialErr = fmt.Errorf("wsconn: could not connect to %s (%s)", c.url, detail)
		}
		c.endDial()
		return nil
	}
	if c.werr == nil {
		c.werr = fmt.Errorf("wsconn: the connection to %s failed: %s", c.url, detail)
	}
	c.q.fail(c.werr, false)
	return nil
}

func (c *conn) onClose(_ js.Value, args []js.Value) any {
	code, reason := 0, ""
	if len(args) > 0 {
		code, reason = args[0].Get("code").Int(), args[0].Get("reason").String()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.open {
		if c.dialErr == nil {
			c.dialErr = fmt.Errorf("wsconn: could not connect to %s (close code %d%s)", c.url, code, prefixed(reason))
		}
		c.endDial()
		return nil
	}
	var rerr error = io.EOF
	if code != 1000 && code != 1001 { // normal closure, going away
		rerr = fmt.Errorf("wsconn: the connection to %s ended with close code %d%s", c.url, code, prefixed(reason))
	}
	if c.werr == nil {
		c.werr = fmt.Errorf("wsconn: the connection to %s is closed", c.url)
	}
	c.q.fail(rerr, false)
	return nil
}

func (c *conn) onMessage(_ js.Value, args []js.Value) any {
	data := args[0].Get("data")
	if !data.InstanceOf(arrayBuffer) {
		c.failConn(fmt.Errorf("wsconn: %s sent a text message; this stream takes binary messages only", c.url))
		return nil
	}
	n := data.Get("byteLength").Int()
	if c.maxMessage > 0 && int64(n) > c.maxMessage {
		c.failConn(fmt.Errorf("wsconn: %s sent a %d-byte message, over the %d-byte limit", c.url, n, c.maxMessage))
		return nil
	}
	b := make([]byte, n)
	js.CopyBytesToGo(b, uint8Array.New(data))
	if err := c.q.push(b); err != nil {
		c.failConn(fmt.Errorf("%w on %s; closing", err, c.url))
	}
	return nil
}

// failConn ends the connection with err for reads and writes, dropping queued bytes.
func (c *conn) failConn(err error) {
	c.mu.Lock()
	if c.closed || c.werr != nil {
		c.mu.Unlock()
		return
	}
	c.werr = err
	c.mu.Unlock()
	c.q.fail(err, true)
	catch(func() { c.ws.Call("close", closeFailed) })
}

// Read reads received bytes, waiting for some. It returns io.EOF after a normal close by the server.
func (c *conn) Read(p []byte) (int, error) { return c.q.read(p) }

// Write queues p to be sent. The writes until the flush task runs go out as one binary message:
// the task is a MessageChannel message, which runs after the tasks already queued (the
// WebSocket messages that arrived meanwhile, each a run of Go sending its ACKs), so a burst of
// WireGuard packets and TCP ACKs costs one send, not one per received message (a send costs
// ~100 µs in Chromium's Worker; issue 15's profile), and a lone keystroke is not delayed by any
// timer (no setTimeout clamp). Without MessageChannel the flush is a microtask: one run of Go. Write does not wait
// for the bytes to leave, only, when more than maxBuffered bytes are unsent, for the socket to
// drain below that.
func (c *conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for {
		c.mu.Lock()
		err, dl := c.werr, c.wdeadline
		c.mu.Unlock()
		if err != nil {
			return 0, err
		}
		if !dl.IsZero() && !time.Now().Before(dl) {
			return 0, os.ErrDeadlineExceeded
		}
		c.omu.Lock()
		unsent := len(c.out)
		c.omu.Unlock()
		if unsent+c.ws.Get("bufferedAmount").Int() <= maxBuffered {
			break
		}
		time.Sleep(2 * time.Millisecond) // JavaScript runs and the socket drains meanwhile
	}
	if len(p) == 0 {
		return 0, nil
	}
	c.omu.Lock()
	if c.shut {
		c.omu.Unlock()
		return 0, net.ErrClosed
	}
	c.out = append(c.out, p...)
	schedule := !c.queued
	c.queued = true
	c.omu.Unlock()
	if schedule {
		if err := catch(c.scheduleFlush); err != nil {
			c.omu.Lock()
			c.queued = false
			c.omu.Unlock()
			c.flush() // no microtasks: send at once
		}
	}
	return len(p), nil
}

// scheduleFlush queues the flush task: a message to flushRecv, else a microtask.
func (c *conn) scheduleFlush() {
	if c.flushPort.Truthy() {
		c.flushPort.Call("postMessage", js.Null())
		return
	}
	js.Global().Call("queueMicrotask", c.flushFunc)
}

// onFlush is the flush task. After Close it releases itself, as Close cannot while it is queued.
func (c *conn) onFlush(js.Value, []js.Value) any {
	c.omu.Lock()
	c.queued = false
	c.omu.Unlock()
	c.flush()
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		go c.flushFunc.Release()
	}
	return nil
}

// flush sends the queued bytes as one message; a failed send fails the connection.
func (c *conn) flush() {
	c.omu.Lock()
	b := c.out
	c.out = nil
	c.omu.Unlock()
	c.mu.Lock()
	closed := c.closed || c.werr != nil
	c.mu.Unlock()
	if len(b) == 0 || closed {
		return
	}
	u8 := uint8Array.New(len(b))
	js.CopyBytesToJS(u8, b)
	if err := catch(func() { c.ws.Call("send", u8) }); err != nil {
		c.failConn(fmt.Errorf("wsconn: sending to %s: %w", c.url, err))
	}
}

// Close closes the socket and releases its handlers; a pending Read returns net.ErrClosed.
func (c *conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	c.flush() // what was written before Close still goes out, ahead of the close frame
	c.mu.Lock()
	c.closed = true
	c.werr = net.ErrClosed
	c.endDial()
	c.mu.Unlock()
	c.q.fail(net.ErrClosed, true)
	catch(func() {
		for _, name := range handlerNames {
			c.ws.Set(name, js.Null())
		}
		c.ws.Call("close", closeNormal)
	})
	for _, f := range c.funcs {
		f.Release()
	}
	c.omu.Lock()
	c.shut = true
	queued := c.queued
	c.omu.Unlock()
	if c.flushRecv.Truthy() {
		// A message still queued is dropped with the channel (onFlush will not run).
		catch(func() {
			c.flushRecv.Set("onmessage", js.Null())
			c.flushRecv.Call("close")
			c.flushPort.Call("close")
		})
		c.flushFunc.Release()
		return nil
	}
	if !queued {
		c.flushFunc.Release()
	}
	return nil
}

// LocalAddr returns a placeholder: the browser does not tell.
func (c *conn) LocalAddr() net.Addr { return addr("local") }

// RemoteAddr returns the WebSocket URL.
func (c *conn) RemoteAddr() net.Addr { return addr(c.url) }

// SetDeadline sets the read and write deadlines.
func (c *conn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// SetReadDeadline makes Read return os.ErrDeadlineExceeded from t on (zero: never).
func (c *conn) SetReadDeadline(t time.Time) error {
	c.q.setDeadline(t)
	return nil
}

// SetWriteDeadline makes Write return os.ErrDeadlineExceeded from t on (zero: never).
func (c *conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wdeadline = t
	return nil
}

// addr is a WebSocket endpoint's net.Addr.
type addr string

func (a addr) Network() string { return "websocket" }
func (a addr) String() string  { return string(a) }

// eventMessage returns what an error event says (node's do; browsers' say nothing).
func eventMessage(ev js.Value) string {
	for _, v := range []js.Value{ev.Get("message"), ev.Get("error")} {
		if v.Type() == js.TypeObject {
			v = v.Get("message")
		}
		if v.Type() == js.TypeString && v.String() != "" {
			return v.String()
		}
	}
	return ""
}

// catch runs f, turning a JavaScript exception into an error.
func catch(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = e
			} else {
				err = errors.New(fmt.Sprint(r))
			}
		}
	}()
	f()
	return nil
}

func prefixed(reason string) string {
	if reason == "" {
		return ""
	}
	return ": " + reason
}
