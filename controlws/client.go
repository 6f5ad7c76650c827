package controlws

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"tsconnect/key"
)

// DialOptions configures Dial.
type DialOptions struct {
	// ServerURL is the control server's base URL: http(s)://host:port.
	ServerURL string
	// ServerKey is the server's static key; if zero, it is fetched from ServerURL+KeyPath.
	ServerKey key.Public
	// MachineKey is this machine's long-lived key, its Noise static key. Required.
	MachineKey key.Private
	// HTTPGet fetches a URL's body; nil means net/http natively. Under GOOS=js it is required unless
	// ServerKey is set (the wasm passes one built on the browser's fetch): no net/http client may be
	// reachable in the js build.
	HTTPGet func(ctx context.Context, url string) ([]byte, error)
	// Resolver looks the server URL's host name up natively; nil means net.DefaultResolver.
	// A name that resolves to several addresses (replicas) is tried at each in turn, one
	// that refuses or does not answer within 2 s giving way to the next. The js build
	// ignores it: the browser resolves.
	Resolver *net.Resolver
	// Logf, if non-nil, receives connection events. Keys and auth keys are never logged.
	Logf func(format string, args ...any)
	// Timeout bounds the whole dial (key fetch, WebSocket, Noise handshake) besides ctx, so a
	// server that accepts TCP and never answers cannot hang it; zero means DialTimeout.
	Timeout time.Duration
	// MapSilence ends a map stream (WatchMaps returns ErrMapSilent) that brought nothing, not
	// even a keep-alive, for this long: the server or the path to it is gone without the
	// connection saying so (a machine powered off, a partition). Zero means DefaultMapSilence.
	MapSilence time.Duration

	// versions is what the client speaks; zero means supported (tests speak other ranges).
	versions versionRange
}

// Client is a connection to control from a node. Its methods may be called concurrently.
type Client struct {
	conn       *Conn
	logf       func(format string, args ...any)
	server     key.Public
	mapSilence time.Duration // 0: streams never end for silence

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan *Envelope // one-shot requests, buffered 1
	streams map[uint64]*stream        // map streams

	closing atomic.Bool   // Close was called
	done    chan struct{} // closed when the read loop ends
	readErr error         // why it ended; set before done closes
}

// stream queues a map stream's messages so the read loop never blocks on a slow consumer.
type stream struct {
	mu     sync.Mutex
	q      []*Envelope
	signal chan struct{} // buffered 1: something was queued
}

func (s *stream) push(env *Envelope) {
	s.mu.Lock()
	s.q = append(s.q, env)
	s.mu.Unlock()
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

func (s *stream) drain() []*Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.q
	s.q = nil
	return q
}

// ErrClosed is returned (wrapped) by calls on a Client after Close.
var ErrClosed = errors.New("controlws: client closed")

// DialTimeout is how long a dial may take when DialOptions.Timeout is zero: far more than a
// loaded control needs to answer, far less than a user would wait for a reconnect.
const DialTimeout = 15 * time.Second

// DefaultMapSilence is DialOptions.MapSilence when zero: more than twice control's keep-alive
// interval (50 s), so one keep-alive lost on a slow path does not end a healthy stream.
const DefaultMapSilence = 2 * time.Minute

// ErrMapSilent is returned by WatchMaps when the stream went silent for longer than
// DialOptions.MapSilence.
var ErrMapSilent = errors.New("controlws: the map stream brought nothing, not even a keep-alive, for longer than its MapSilence")

// Dial connects to the control server: it fetches the server key if needed, opens the WebSocket at Path and
// runs the Noise handshake as initiator with MachineKey. A server holding another key than the one pinned or
// fetched makes Dial fail with an error saying the server key did not match. ctx bounds the dial only.
func Dial(ctx context.Context, opts DialOptions) (*Client, error) {
	conn, err := DialConn(ctx, opts)
	if err != nil {
		return nil, err
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	c := newClient(conn, logf)
	c.mapSilence = opts.MapSilence
	if c.mapSilence <= 0 {
		c.mapSilence = DefaultMapSilence
	}
	return c, nil
}

// DialConn connects as Dial does and returns the bare connection: envelopes in and out as
// they are, nothing checked before sending, no request tracking (tests and tools).
func DialConn(ctx context.Context, opts DialOptions) (*Conn, error) {
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if opts.MachineKey.IsZero() {
		return nil, errors.New("controlws: DialOptions.MachineKey is required")
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DialTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	base, err := parseServerURL(opts.ServerURL)
	if err != nil {
		return nil, err
	}
	vr := opts.versions
	if vr == (versionRange{}) {
		vr = supported
	}
	// The newest version is offered unless GET KeyPath says the server is older; the server's
	// answer then picks. A pinned key skips the fetch, so it cannot learn of a version 1 server.
	offer := vr.max
	nd := newNativeDial(opts.Resolver)
	serverKey := opts.ServerKey
	if serverKey.IsZero() {
		get := opts.HTTPGet
		if get == nil {
			get = nd.get
		}
		var srv versionRange
		if serverKey, srv, err = fetchServerKey(ctx, base, get); err != nil {
			return nil, err
		}
		if offer, err = pickOffer(srv, vr); err != nil {
			return nil, fmt.Errorf("%w (server at %s)", err, opts.ServerURL)
		}
	}
	wsURL := controlURL(base, offer)
	// Compression stays off, since Noise ciphertext does not compress. The conn outlives ctx, which
	// bounds the dial only; Close ends it. One Noise message per WebSocket message, so none is larger.
	nc, err := nd.ws(ctx, wsURL, maxWireMsg)
	if err != nil {
		return nil, fmt.Errorf("controlws: connecting to %s: %w", wsURL, err)
	}
	conn, err := initiate(ctx, nc, opts.MachineKey, serverKey, offer, vr)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%w (server %s at %s)", err, serverKey.ShortString(), opts.ServerURL)
	}
	logf("controlws: connected to %s (protocol version %d, server key %s, machine key %s)", opts.ServerURL, conn.Version(), serverKey.ShortString(), opts.MachineKey.Public().ShortString())
	return conn, nil
}

// newClient starts the read loop over an established conn.
func newClient(conn *Conn, logf func(string, ...any)) *Client {
	c := &Client{
		conn:    conn,
		logf:    logf,
		server:  conn.PeerKey(),
		pending: make(map[uint64]chan *Envelope),
		streams: make(map[uint64]*stream),
		done:    make(chan struct{}),
	}
	go c.readLoop()
	return c
}

// ServerKey returns the key the server proved it holds.
func (c *Client) ServerKey() key.Public { return c.server }

// Close closes the connection and waits for the read loop to end. Calls in flight return errors.
func (c *Client) Close() error {
	c.closing.Store(true)
	c.conn.Close()
	<-c.done
	return nil
}

// Done returns a channel closed when the connection has ended; Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Version is the protocol version the connection negotiated.
func (c *Client) Version() int { return c.conn.Version() }

// Err returns why the connection ended, or nil while it is up.
func (c *Client) Err() error {
	select {
	case <-c.done:
		return c.readErr
	default:
		return nil
	}
}

func (c *Client) readLoop() {
	defer close(c.done)
	for {
		env, err := c.conn.ReadEnvelope()
		if err != nil {
			switch {
			case c.closing.Load() || errors.Is(err, net.ErrClosed):
				c.readErr = ErrClosed
			case errors.Is(err, io.EOF):
				c.readErr = errors.New("controlws: server closed the connection")
			default:
				c.readErr = fmt.Errorf("controlws: connection to control failed: %w", err)
			}
			c.conn.Close()
			return
		}
		c.dispatch(env)
	}
}

func (c *Client) dispatch(env *Envelope) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.pending[env.ID]; ok {
		delete(c.pending, env.ID)
		ch <- env // buffered 1, one send per request
		return
	}
	if s, ok := c.streams[env.ID]; ok {
		s.push(env)
		return
	}
	c.logf("controlws: dropping %q message for no pending request (id %d)", env.Type, env.ID)
}

// track reserves a request ID (never 0) and registers how its answers are routed.
func (c *Client) track(ch chan *Envelope, s *stream) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	id := c.nextID
	if ch != nil {
		c.pending[id] = ch
	} else {
		c.streams[id] = s
	}
	return id
}

func (c *Client) forget(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pending, id)
	delete(c.streams, id)
}

// connErr is the error for a call that found the connection gone.
func (c *Client) connErr() error {
	<-c.done
	return c.readErr
}

// roundTrip sends a request and waits for its single answer, which must be of type want (or an error).
func (c *Client) roundTrip(ctx context.Context, typ string, body any, want string) (*Envelope, error) {
	if err := c.Err(); err != nil {
		return nil, err
	}
	ch := make(chan *Envelope, 1)
	id := c.track(ch, nil)
	defer c.forget(id)
	if err := c.conn.Send(typ, id, body); err != nil {
		if c.Err() != nil {
			return nil, c.connErr()
		}
		return nil, err
	}
	select {
	case env := <-ch:
		if err := env.Err(); err != nil {
			return nil, err
		}
		if env.Type != want {
			return nil, fmt.Errorf("controlws: server answered %s with %q, want %q", typ, env.Type, want)
		}
		return env, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("controlws: %s: %w", typ, context.Cause(ctx))
	case <-c.done:
		return nil, c.readErr
	}
}

// Register binds this machine to req.NodeKey as a node, using req.AuthKey unless the node key is already
// bound to this machine. Refusals come back as *Error (CodeInvalidKey, CodeUsedKey, CodeNodeKeyInUse, …).
func (c *Client) Register(ctx context.Context, req RegisterRequest) (*RegisterResponse, error) {
	if err := req.Hostinfo.Validate(); err != nil {
		return nil, fmt.Errorf("controlws: register not sent: %w", err)
	}
	env, err := c.roundTrip(ctx, TypeRegister, &req, TypeRegisterResponse)
	if err != nil {
		return nil, err
	}
	var resp RegisterResponse
	if err := env.DecodeBody(&resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Update replaces the node's Hostinfo. It may be called while WatchMaps runs.
func (c *Client) Update(ctx context.Context, hi Hostinfo) error {
	if err := hi.Validate(); err != nil {
		return fmt.Errorf("controlws: update not sent: %w", err)
	}
	_, err := c.roundTrip(ctx, TypeUpdate, &Update{Hostinfo: hi}, TypeOK)
	return err
}

// Logout deletes the node from the network. It may be called while WatchMaps runs, whose stream the server
// then ends (typically with CodeNodeDeleted).
func (c *Client) Logout(ctx context.Context) error {
	_, err := c.roundTrip(ctx, TypeLogout, nil, TypeOK)
	return err
}

// WatchMaps sends a MapRequest and calls fn with the full map, then with the map after every delta (see
// NetworkMap.Apply); keep-alives are absorbed. It returns when ctx ends, the connection fails, or the server
// ends the stream with an error (an *Error). fn runs on WatchMaps' goroutine, one call at a time, and may call
// Update and Logout. fn may keep the map it gets; the client never modifies it afterwards, and fn must not
// either. Messages queue while fn runs, so a slow fn delays maps but never stalls other calls.
// The server keeps its side of the stream until the connection closes, so use one WatchMaps per Client.
func (c *Client) WatchMaps(ctx context.Context, req MapRequest, fn func(*NetworkMap)) error {
	if err := c.Err(); err != nil {
		return err
	}
	if err := req.Hostinfo.Validate(); err != nil {
		return fmt.Errorf("controlws: mapRequest not sent: %w", err)
	}
	s := &stream{signal: make(chan struct{}, 1)}
	id := c.track(nil, s)
	defer c.forget(id)
	if err := c.conn.Send(TypeMapRequest, id, &req); err != nil {
		if c.Err() != nil {
			return c.connErr()
		}
		return err
	}
	var (
		nm      NetworkMap
		gotFull bool
	)
	handle := func(env *Envelope) error {
		if err := env.Err(); err != nil {
			return err
		}
		if env.Type != TypeMapResponse {
			return fmt.Errorf("controlws: unexpected %q message in the map stream", env.Type)
		}
		var r MapResponse
		if err := env.DecodeBody(&r); err != nil {
			return err
		}
		if r.Full == nil && !gotFull {
			if r.isKeepAlive() {
				return nil
			}
			return errors.New("controlws: server sent a map delta before the full map")
		}
		if r.isKeepAlive() {
			return nil
		}
		if err := nm.CheckDelta(&r); err != nil {
			return err // fail closed: the next stream starts from a full map
		}
		gotFull = true
		nm.Apply(&r)
		m := nm
		fn(&m)
		return nil
	}
	var silent <-chan time.Time // nil: never
	var quiet *time.Timer
	if c.mapSilence > 0 {
		quiet = time.NewTimer(c.mapSilence)
		defer quiet.Stop()
		silent = quiet.C
	}
	for {
		envs := s.drain()
		for _, env := range envs {
			if err := handle(env); err != nil {
				return err
			}
		}
		if len(envs) > 0 && quiet != nil {
			quiet.Reset(c.mapSilence)
		}
		select {
		case <-s.signal:
		case <-silent:
			return ErrMapSilent
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-c.done:
			// What arrived before the end (an error ending the stream, say) tells more than the end itself.
			for _, env := range s.drain() {
				if err := handle(env); err != nil {
					return err
				}
			}
			return c.readErr
		}
	}
}

// isKeepAlive reports whether r changes nothing.
func (r *MapResponse) isKeepAlive() bool {
	return r.Full == nil && r.Self == nil && len(r.PeersChanged) == 0 && len(r.PeersRemoved) == 0 && len(r.Users) == 0 && r.Rules == nil && r.FilterDelta == nil && r.RecordFromDelta == nil
}
