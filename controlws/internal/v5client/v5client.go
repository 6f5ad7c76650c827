//go:build !js

// Package v5client is the control client of protocol version 5, frozen as it spoke from issue 20's
// session recording and login audit until version 6 (recordFrom deltas): the offer ?v=5 in the URL, the
// server's plain version answer bound into the prologue "tsconnect control v5\noffer 5\nhello <answer>",
// envelopes with "v":5, full maps, peer deltas, rules deltas ("rules": the node's whole new packet filter,
// SSH rules and, for a recorder, recordFrom) and filter deltas ("filterDelta", kept as they came in
// MapResponse.FilterDelta: applying one needs the filter decoded, which this client passes on unread).
//
// FROZEN: never edit this package. Compatibility tests run it against every later control server, so a
// server change that would break the version 5 clients in the field breaks them first. It holds only what
// such a client needs (register, the map stream, update, check, logout) and depends on no package of this
// module, so later edits elsewhere cannot change what it sends (docs/versions.md).
package v5client

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/flynn/noise"
)

// Version 5's constants, as they were.
const (
	keyPath       = "/key"
	controlPath   = "/ts/control"
	version       = 5
	versionParam  = "v"
	maxHelloLen   = 1024
	maxNoiseMsg   = 65535
	tagLen        = 16
	maxEnvelope   = 16 << 20
	answersBuffer = 64
)

var cipherSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s)

// Key is a 32-byte Curve25519 key, 64 hex digits in JSON.
type Key [32]byte

// MarshalText encodes k as hex.
func (k Key) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(k[:])), nil }

// UnmarshalText decodes 64 hex digits.
func (k *Key) UnmarshalText(b []byte) error {
	if len(b) != 64 {
		return fmt.Errorf("key of %d hex digits", len(b))
	}
	_, err := hex.Decode(k[:], b)
	return err
}

// NewKeyPair returns a fresh Curve25519 key pair (machine or node key).
func NewKeyPair() noise.DHKey {
	kp, err := noise.DH25519.GenerateKeypair(rand.Reader)
	if err != nil {
		panic(err)
	}
	return kp
}

// Public returns kp's public half as a Key.
func Public(kp noise.DHKey) Key { return Key(kp.Public) }

// Envelope is version 5's message wrapper.
type Envelope struct {
	V    int             `json:"v"`
	Type string          `json:"type"`
	ID   uint64          `json:"id,omitempty"`
	Body json.RawMessage `json:"body,omitempty"`
}

// Hostinfo is what a version 5 node said about itself.
type Hostinfo struct {
	Hostname    string   `json:"hostname,omitempty"`
	OS          string   `json:"os,omitempty"`
	SSH         bool     `json:"ssh,omitempty"`
	SSHHostKeys []string `json:"sshHostKeys,omitempty"`
	HomeDERP    int      `json:"homeDERP,omitempty"`
	Endpoints   []string `json:"endpoints,omitempty"`
}

// Node is a node as version 5 read it.
type Node struct {
	ID          int64    `json:"id"`
	Name        string   `json:"name"`
	Key         Key      `json:"key"`
	MachineKey  Key      `json:"machineKey"`
	Addresses   []string `json:"addresses"`
	HomeDERP    int      `json:"homeDERP,omitempty"`
	User        int64    `json:"user,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	SSH         bool     `json:"ssh,omitempty"`
	SSHHostKeys []string `json:"sshHostKeys,omitempty"`
	Hostname    string   `json:"hostname,omitempty"`
	OS          string   `json:"os,omitempty"`
	Online      bool     `json:"online,omitempty"`
}

// UserProfile is a user as version 5 read it.
type UserProfile struct {
	ID        int64  `json:"id"`
	LoginName string `json:"loginName"`
}

// NetworkMap is a full map as version 5 read it (the rest of it it passed on without reading here).
type NetworkMap struct {
	Self    Node            `json:"self"`
	Peers   []Node          `json:"peers"`
	Users   []UserProfile   `json:"users"`
	DERPMap json.RawMessage `json:"derpMap"`
	Domain  string          `json:"domain,omitempty"`
	// PacketFilter and SSHRules are the node's rules, from full maps and rules deltas.
	PacketFilter json.RawMessage `json:"packetFilter,omitempty"`
	SSHRules     json.RawMessage `json:"sshRules,omitempty"`
	// RecordFrom is a recorder's list of the nodes it takes recordings from, whole in full
	// maps and rules deltas.
	RecordFrom []string `json:"recordFrom,omitempty"`
}

// MapResponse is one message of a map stream.
type MapResponse struct {
	Full         *NetworkMap     `json:"full,omitempty"`
	Self         *Node           `json:"self,omitempty"`
	PeersChanged []Node          `json:"peersChanged,omitempty"`
	PeersRemoved []int64         `json:"peersRemoved,omitempty"`
	Users        []UserProfile   `json:"users,omitempty"`
	Rules        *MapRules       `json:"rules,omitempty"`
	FilterDelta  json.RawMessage `json:"filterDelta,omitempty"`
	KeepAlive    bool            `json:"keepAlive,omitempty"`
}

// MapRules is a rules delta as version 5 read it: all replace what the node had.
type MapRules struct {
	PacketFilter json.RawMessage `json:"packetFilter"`
	SSHRules     json.RawMessage `json:"sshRules"`
	RecordFrom   []string        `json:"recordFrom,omitempty"`
}

// Apply folds r into nm as version 5 did: a Full replaces nm; otherwise Self, rules, changed and
// removed peers and users are applied in that order.
func (nm *NetworkMap) Apply(r *MapResponse) {
	if r.Full != nil {
		*nm = *r.Full
		return
	}
	if r.Self != nil {
		nm.Self = *r.Self
	}
	if r.Rules != nil {
		nm.PacketFilter, nm.SSHRules, nm.RecordFrom = r.Rules.PacketFilter, r.Rules.SSHRules, r.Rules.RecordFrom
	}
	gone := map[int64]bool{}
	for _, id := range r.PeersRemoved {
		gone[id] = true
	}
	var peers []Node
	for _, p := range nm.Peers {
		if !gone[p.ID] {
			peers = append(peers, p)
		}
	}
	for _, c := range r.PeersChanged {
		replaced := false
		for i := range peers {
			if peers[i].ID == c.ID {
				peers[i], replaced = c, true
			}
		}
		if !replaced {
			peers = append(peers, c)
		}
	}
	nm.Peers = peers
	for _, u := range r.Users {
		replaced := false
		for i := range nm.Users {
			if nm.Users[i].ID == u.ID {
				nm.Users[i], replaced = u, true
			}
		}
		if !replaced {
			nm.Users = append(nm.Users, u)
		}
	}
}

// RegisterResponse is the answer to a register.
type RegisterResponse struct {
	Node Node        `json:"node"`
	User UserProfile `json:"user"`
}

// SSHCheckRequest is the body of an sshCheck.
type SSHCheckRequest struct {
	SrcNode     int64         `json:"srcNode"`
	SrcAddr     string        `json:"srcAddr"`
	User        string        `json:"user"`
	LocalUser   string        `json:"localUser"`
	CheckPeriod time.Duration `json:"checkPeriod"`
	HeldFor     time.Duration `json:"heldFor,omitempty"`
}

// SSHCheckVerdict is the body of an sshCheckVerdict.
type SSHCheckVerdict struct {
	Verdict string    `json:"verdict"`
	User    string    `json:"user,omitempty"`
	URL     string    `json:"url,omitempty"`
	Expires time.Time `json:"expires,omitzero"`
	Message string    `json:"message,omitempty"`
}

// Error is the body of an error message.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return fmt.Sprintf("control: %s (%s)", e.Message, e.Code) }

// Decode unmarshals env's body into v; an error message becomes its *Error.
func Decode(env Envelope, v any) error {
	if env.Type == "error" {
		var e Error
		if err := json.Unmarshal(env.Body, &e); err != nil {
			return fmt.Errorf("malformed error: %v", err)
		}
		return &e
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(env.Body, v)
}

// FetchKey gets the server's static key from GET /key, refusing a server whose versions (its oldest
// "version" to its newest "maxVersion", absent for a version 1 server) leave out 5.
func FetchKey(ctx context.Context, serverURL string) (Key, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(serverURL, "/")+keyPath, nil)
	if err != nil {
		return Key{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Key{}, err
	}
	defer resp.Body.Close()
	var kr struct {
		Key        Key `json:"key"`
		Version    int `json:"version"`
		MaxVersion int `json:"maxVersion"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&kr); err != nil {
		return Key{}, fmt.Errorf("server key: bad JSON: %w", err)
	}
	if kr.Version > version || max(kr.Version, kr.MaxVersion) < version {
		return Key{}, fmt.Errorf("controlws: server at %s speaks control protocol versions %d–%d, this client %d", serverURL, kr.Version, max(kr.Version, kr.MaxVersion), version)
	}
	return kr.Key, nil
}

// Client is a version 5 connection to control.
type Client struct {
	nc    net.Conn
	br    *bufio.Reader
	tx    *noise.CipherState
	rx    *noise.CipherState
	wmu   sync.Mutex
	plain []byte

	mu      sync.Mutex
	nextID  uint64
	answers map[uint64]chan Envelope
	done    chan struct{}
	err     error
}

// Dial opens the control WebSocket at serverURL offering version 5 (?v=5), reads the server's version
// answer and runs the version 5 Noise IK handshake with machine against serverKey, the answer bound
// into its prologue.
func Dial(ctx context.Context, serverURL string, serverKey Key, machine noise.DHKey) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(serverURL, "/") + controlPath)
	if err != nil {
		return nil, err
	}
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	u.RawQuery = url.Values{versionParam: {fmt.Sprint(version)}}.Encode()
	ws, _, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return nil, fmt.Errorf("controlws: connecting to %s: %w", u, err)
	}
	nc := websocket.NetConn(context.Background(), ws, websocket.MessageBinary)
	ws.SetReadLimit(2 + maxNoiseMsg)
	c := &Client{nc: nc, br: bufio.NewReaderSize(nc, 4096), answers: map[uint64]chan Envelope{}, done: make(chan struct{})}
	if err := c.handshake(ctx, serverKey, machine); err != nil {
		nc.Close()
		return nil, err
	}
	go c.readLoop()
	return c, nil
}

func (c *Client) handshake(ctx context.Context, serverKey Key, machine noise.DHKey) error {
	if d, ok := ctx.Deadline(); ok {
		c.nc.SetDeadline(d)
		defer c.nc.SetDeadline(time.Time{})
	}
	hello, err := c.readWire()
	if err != nil {
		return fmt.Errorf("controlws: reading the version answer: %w", err)
	}
	if len(hello) > maxHelloLen {
		return fmt.Errorf("controlws: a version answer of %d bytes", len(hello))
	}
	var h struct {
		Version int    `json:"version"`
		Error   string `json:"error"`
	}
	if err := json.Unmarshal(hello, &h); err != nil {
		return fmt.Errorf("controlws: malformed version answer: %w", err)
	}
	if h.Error != "" {
		return &Error{Code: "unsupported_version", Message: h.Error}
	}
	if h.Version != version {
		return fmt.Errorf("controlws: the server picked version %d, this client speaks %d", h.Version, version)
	}
	prologue := fmt.Sprintf("tsconnect control v%d\noffer %d\nhello %s", version, version, hello)
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite: cipherSuite, Pattern: noise.HandshakeIK, Initiator: true,
		Prologue: []byte(prologue), StaticKeypair: machine, PeerStatic: serverKey[:],
	})
	if err != nil {
		return err
	}
	msg1, _, _, err := hs.WriteMessage(nil, nil)
	if err != nil {
		return err
	}
	if err := c.writeWire(msg1); err != nil {
		return fmt.Errorf("controlws: sending handshake: %w", err)
	}
	msg2, err := c.readWire()
	if err != nil {
		return fmt.Errorf("controlws: reading handshake reply: %w", err)
	}
	_, tx, rx, err := hs.ReadMessage(nil, msg2)
	if err != nil {
		return fmt.Errorf("controlws: handshake reply did not authenticate: %w", err)
	}
	c.tx, c.rx = tx, rx
	return c.writeNoise(nil) // the confirmation
}

func (c *Client) writeWire(msg []byte) error {
	_, err := c.nc.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(msg))), msg...))
	return err
}

func (c *Client) readWire() ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
		return nil, err
	}
	msg := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	_, err := io.ReadFull(c.br, msg)
	return msg, err
}

func (c *Client) writeNoise(chunk []byte) error {
	msg, err := c.tx.Encrypt(nil, nil, chunk)
	if err != nil {
		return err
	}
	return c.writeWire(msg)
}

// plainStream is the decrypted byte stream, for the read loop.
type plainStream struct{ *Client }

func (c plainStream) Read(p []byte) (int, error) {
	for len(c.plain) == 0 {
		msg, err := c.readWire()
		if err != nil {
			return 0, err
		}
		if c.plain, err = c.rx.Decrypt(nil, nil, msg); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.plain)
	c.plain = c.plain[n:]
	return n, nil
}

func (c *Client) readLoop() {
	defer close(c.done)
	r := plainStream{c}
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			c.err = err
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > maxEnvelope {
			c.err = fmt.Errorf("envelope of %d bytes", n)
			return
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			c.err = err
			return
		}
		var env Envelope
		if err := json.Unmarshal(b, &env); err != nil {
			c.err = err
			return
		}
		c.mu.Lock()
		ch := c.answers[env.ID]
		c.mu.Unlock()
		if ch != nil {
			select {
			case ch <- env:
			default: // a consumer that stopped reading loses answers, never the loop
			}
		}
	}
}

// Send sends a request of type typ with body (nil for none) and returns its ID and the channel
// receiving every answer with that ID.
func (c *Client) Send(typ string, body any) (uint64, <-chan Envelope, error) {
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	ch := make(chan Envelope, answersBuffer)
	c.answers[id] = ch
	c.mu.Unlock()
	return id, ch, c.SendID(typ, id, body)
}

// SendID sends a message of type typ with a given ID (sshCheckCancel names its sshCheck).
func (c *Client) SendID(typ string, id uint64, body any) error {
	env := Envelope{V: version, Type: typ, ID: id}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		env.Body = b
	}
	js, err := json.Marshal(env)
	if err != nil {
		return err
	}
	frame := append(binary.BigEndian.AppendUint32(nil, uint32(len(js))), js...)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for len(frame) > 0 {
		n := min(len(frame), maxNoiseMsg-tagLen)
		if err := c.writeNoise(frame[:n]); err != nil {
			return err
		}
		frame = frame[n:]
	}
	return nil
}

// Next waits for the next answer on ch.
func (c *Client) Next(ctx context.Context, ch <-chan Envelope) (Envelope, error) {
	select {
	case env := <-ch:
		return env, nil
	case <-ctx.Done():
		return Envelope{}, ctx.Err()
	case <-c.done:
		select {
		case env := <-ch:
			return env, nil
		default:
		}
		return Envelope{}, fmt.Errorf("connection ended: %v", c.err)
	}
}

// Call sends a request and decodes its first answer into v.
func (c *Client) Call(ctx context.Context, typ string, body, v any) error {
	_, ch, err := c.Send(typ, body)
	if err != nil {
		return err
	}
	env, err := c.Next(ctx, ch)
	if err != nil {
		return err
	}
	return Decode(env, v)
}

// Register registers nodeKey with authKey.
func (c *Client) Register(ctx context.Context, authKey string, nodeKey Key, hi Hostinfo) (*RegisterResponse, error) {
	var r RegisterResponse
	err := c.Call(ctx, "register", map[string]any{"authKey": authKey, "nodeKey": nodeKey, "hostinfo": hi}, &r)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// MapRequest starts the map stream; its answers come on the returned channel.
func (c *Client) MapRequest(nodeKey Key, hi Hostinfo) (<-chan Envelope, error) {
	_, ch, err := c.Send("mapRequest", map[string]any{"nodeKey": nodeKey, "hostinfo": hi})
	return ch, err
}

// Update replaces the node's hostinfo.
func (c *Client) Update(ctx context.Context, hi Hostinfo) error {
	return c.Call(ctx, "update", map[string]any{"hostinfo": hi}, nil)
}

// Logout logs the node out.
func (c *Client) Logout(ctx context.Context) error { return c.Call(ctx, "logout", nil, nil) }

// Done is closed when the connection ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Close ends the connection.
func (c *Client) Close() error {
	err := c.nc.Close()
	<-c.done
	return err
}
