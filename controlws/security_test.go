//go:build !js

package controlws

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"tsconnect/internal/leakcheck"
	"tsconnect/key"
)

// TestNoPlaintextOnTheWire records the TCP stream of a whole connection, a map of several Noise messages
// included, and checks that nothing readable crossed: no JSON keys, hostname, auth key or peer names.
func TestNoPlaintextOnTheWire(t *testing.T) {
	leakcheck.Check(t)
	s := newTestServer(t)
	s.peers = 400 // a map over 64 KiB, so it spans Noise messages
	const hostname = "secret-laptop-hostname"
	c := dial(t, s, DialOptions{ServerKey: s.key.Public()})
	ctx := context.Background()
	nodeKey := key.NewPrivate().Public()
	if _, err := c.Register(ctx, RegisterRequest{AuthKey: goodAuthKey, NodeKey: nodeKey, Hostinfo: Hostinfo{Hostname: hostname}}); err != nil {
		t.Fatal(err)
	}
	maps, _, cancel := watch(t, c, MapRequest{NodeKey: nodeKey, Hostinfo: Hostinfo{Hostname: hostname}})
	if nm := <-maps; nm.Self.Hostname != hostname || len(nm.Peers) != 400 {
		t.Fatalf("map: self %q, %d peers", nm.Self.Hostname, len(nm.Peers))
	}
	if err := c.Update(ctx, Hostinfo{Hostname: hostname + "-2"}); err != nil {
		t.Fatal(err)
	}
	<-maps
	cancel()
	c.Close()

	fromClient, toClient := s.captured(0)
	secrets := []string{`"type"`, `"v":`, hostname, goodAuthKey, "peer-1", "mapResponse", "register", nodeKey.String(), "alice@example.com"}
	up, down := wsMessages(t, fromClient), wsMessages(t, toClient)
	for _, stream := range [][]byte{fromClient, toClient, bytes.Join(up, nil), bytes.Join(down, nil)} {
		for _, sec := range secrets {
			if bytes.Contains(stream, []byte(sec)) {
				t.Errorf("plaintext %q on the wire", sec)
			}
		}
	}

	// The server's version answer is the one plaintext message: the first it sends, holding only versions.
	if h, err := parseHello(down[0][wireHeaderLen:]); err != nil || h.Version != Version || len(down[0]) > wireHeaderLen+64 {
		t.Fatalf("first message to the client %q: %+v, %v; want the version answer", down[0], h, err)
	}
	down = down[1:]
	// Each WebSocket message is one length-prefixed Noise message; the handshake has its known sizes.
	full := 0
	for dir, msgs := range [][][]byte{up, down} {
		for i, m := range msgs {
			if len(m) < wireHeaderLen || int(binary.BigEndian.Uint16(m)) != len(m)-wireHeaderLen || len(m) > maxWireMsg {
				t.Fatalf("direction %d message %d: %d bytes, not one length-prefixed Noise message", dir, i, len(m))
			}
			if len(m) == maxWireMsg {
				full++
			}
		}
	}
	if len(up[0]) != wireHeaderLen+msg1Len || len(down[0]) != wireHeaderLen+48 || len(up[1]) != wireHeaderLen+tagLen {
		t.Fatalf("handshake sizes %d, %d, %d", len(up[0]), len(down[0]), len(up[1]))
	}
	if full == 0 {
		t.Fatal("the large map did not fill a Noise message: it was not split")
	}
	t.Logf("%d client and %d server WebSocket messages, %d of them full-size (%d bytes)", len(up), len(down), full, maxWireMsg)
}

// TestReplayedHandshake replays a recorded client's WebSocket messages on a new connection: the server
// answers the first handshake message (it cannot tell a replay) but nothing after it decrypts, so Accept
// refuses and the server never acts.
func TestReplayedHandshake(t *testing.T) {
	leakcheck.Check(t)
	s := newTestServer(t)
	c := dial(t, s, DialOptions{ServerKey: s.key.Public()})
	if _, err := c.Register(context.Background(), RegisterRequest{AuthKey: goodAuthKey, NodeKey: key.NewPrivate().Public()}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-s.acceptEv; err != nil {
		t.Fatal(err)
	}
	fromClient, _ := s.captured(0)
	recorded := wsMessages(t, fromClient)
	_, _, handledBefore := s.stats()

	for _, tc := range []struct {
		name string
		send [][]byte
	}{
		{"whole connection", recorded},
		{"first message then own bytes", [][]byte{recorded[0], append([]byte{0, 40}, bytes.Repeat([]byte{7}, 40)...)}},
		{"first message then hang up", recorded[:1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := dialRaw(t, s, "?v="+strconv.Itoa(Version)) // as the recorded client offered
			ctx := context.Background()
			if _, h, err := ws.Read(ctx); err != nil || !bytes.Contains(h, []byte(`"version":`)) {
				t.Fatalf("version answer: %q, %v", h, err)
			}
			if err := ws.Write(ctx, websocket.MessageBinary, tc.send[0]); err != nil {
				t.Fatal(err)
			}
			if _, reply, err := ws.Read(ctx); err != nil || len(reply) != wireHeaderLen+48 {
				t.Fatalf("server reply to the replayed first message: %d bytes, %v", len(reply), err)
			}
			for _, m := range tc.send[1:] {
				ws.Write(ctx, websocket.MessageBinary, m) // may fail once the server hung up
			}
			if len(tc.send) == 1 {
				ws.Close(websocket.StatusNormalClosure, "")
			}
			for { // read until the server hangs up, answering its close frame
				if _, _, err := ws.Read(ctx); err != nil {
					break
				}
			}
			err := <-s.acceptEv
			if err == nil {
				t.Fatal("server accepted a replayed handshake")
			}
			if !strings.Contains(err.Error(), "did not confirm the handshake") {
				t.Fatalf("Accept error %q does not say the client did not confirm", err)
			}
			t.Logf("refused: %v", err)
		})
	}
	if accepted, _, handled := s.stats(); accepted != 1 || handled != handledBefore {
		t.Fatalf("after replays: %d accepted, %d envelopes handled (before: %d)", accepted, handled, handledBefore)
	}
}

// pipePair runs both handshake ends over an in-memory pipe, the client offering its newest version.
//
//lint:ignore ST1008 the results go end by end (conns, their errors, the raw pipe ends); the errors are not the helper's own.
func pipePair(t *testing.T, clientVersions, serverVersions versionRange) (cli, srv *Conn, cliErr, srvErr error, rawCli, rawSrv net.Conn) {
	t.Helper()
	rawCli, rawSrv = net.Pipe()
	t.Cleanup(func() { rawCli.Close(); rawSrv.Close() })
	serverKey := key.NewPrivate()
	type res struct {
		c   *Conn
		err error
	}
	done := make(chan res, 1)
	go func() {
		c, err := respond(context.Background(), rawSrv, serverKey, clientVersions.max, serverVersions)
		if err != nil {
			rawSrv.Close() // what a server does with a failed handshake
		}
		done <- res{c, err}
	}()
	cli, cliErr = initiate(context.Background(), rawCli, key.NewPrivate(), serverKey.Public(), clientVersions.max, clientVersions)
	if cliErr != nil {
		rawCli.Close()
	}
	r := <-done
	return cli, r.c, cliErr, r.err, rawCli, rawSrv
}

func TestPipeRoundTrip(t *testing.T) {
	cli, srv, cliErr, srvErr, _, _ := pipePair(t, supported, supported)
	if cliErr != nil || srvErr != nil {
		t.Fatal(cliErr, srvErr)
	}
	// Many writers at once: every envelope arrives whole.
	const writers, each = 8, 20
	go func() {
		for w := range writers {
			go func() {
				for i := range each {
					cli.Send(TypeUpdate, uint64(w*1000+i), &Update{Hostinfo: Hostinfo{Hostname: strings.Repeat("h", 70000)}})
				}
			}()
		}
	}()
	seen := map[uint64]bool{}
	for range writers * each {
		env, err := srv.ReadEnvelope()
		if err != nil {
			t.Fatal(err)
		}
		var u Update
		if err := env.DecodeBody(&u); err != nil || len(u.Hostinfo.Hostname) != 70000 || seen[env.ID] {
			t.Fatalf("envelope %d: %v", env.ID, err)
		}
		seen[env.ID] = true
	}
	cli.Close()
	if _, err := srv.ReadEnvelope(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the peer closed: %v, want io.EOF", err)
	}
}

// TestMalformedInput feeds broken bytes to an established server Conn: each must give an error, not a panic.
func TestMalformedInput(t *testing.T) {
	for _, tc := range []struct {
		name  string
		raw   []byte // written to the wire as is
		plain []byte // written through the client's Noise transport
		want  string
	}{
		{name: "garbage", raw: append([]byte{0, 200}, bytes.Repeat([]byte{0x42}, 200)...), want: "did not decrypt"},
		{name: "garbage length", raw: bytes.Repeat([]byte{0x42}, 300), want: "unexpected EOF"},
		{name: "noise message cut short", raw: []byte{0, 100, 1, 2, 3}, want: "unexpected EOF"},
		{name: "shorter than a tag", raw: []byte{0, 5, 1, 2, 3, 4, 5}, want: "shorter than its tag"},
		{name: "absurd length", plain: []byte{0x10, 0, 0, 0, '{'}, want: "over the 16777216-byte limit"},
		{name: "not JSON", plain: frame("{not json"), want: "bad envelope"},
		{name: "no type", plain: frame(`{"v":1,"id":3}`), want: "no type"},
		{name: "envelope cut short", plain: frame(`{"v":1,"type":"ok"}`)[:10], want: "unexpected EOF"},
		{name: "header cut short", plain: []byte{0, 0}, want: "unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cli, srv, cliErr, srvErr, rawCli, _ := pipePair(t, supported, supported)
			if cliErr != nil || srvErr != nil {
				t.Fatal(cliErr, srvErr)
			}
			go func() {
				if tc.raw != nil {
					rawCli.Write(tc.raw)
				} else {
					cli.writePlain(tc.plain)
				}
				rawCli.Close()
			}()
			_, err := srv.ReadEnvelope()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadEnvelope: %v, want an error containing %q", err, tc.want)
			}
			if _, err2 := srv.ReadEnvelope(); err2 == nil {
				t.Fatal("a broken Conn read again")
			}
		})
	}
}

// TestMalformedHandshake feeds broken first messages to the responder.
func TestMalformedHandshake(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  []byte
		want string
	}{
		{"nothing", nil, "EOF"},
		{"wrong size", append([]byte{0, 10}, make([]byte, 10)...), "want 96"},
		{"garbage of the right size", append([]byte{0, msg1Len}, bytes.Repeat([]byte{9}, msg1Len)...), "did not decrypt"},
		{"cut short", []byte{0, msg1Len, 1}, "unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			go func() { a.Write(tc.raw); a.Close() }()
			_, err := respond(context.Background(), b, key.NewPrivate(), 1, supported) // no offer: msg1 first
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("respond: %v, want %q", err, tc.want)
			}
		})
	}
}

// TestHandshakeContext checks that ctx bounds a handshake with a silent peer.
func TestHandshakeContext(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := respond(ctx, b, key.NewPrivate(), 1, supported); errc <- err }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("respond after cancel: %v", err)
	}
}
