//go:build !js

package derpws

import (
	"bufio"
	"net"
	"net/http"
	"testing"
	"time"

	"tsconnect/internal/leakcheck"
	"tsconnect/key"
)

// TestClientWire drives a client from a hand-written relay: the upgrade request carries the
// headers of the protocol, the client announces this relay as home, and it answers a Ping.
func TestClientWire(t *testing.T) {
	leakcheck.Check(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv := key.NewPrivate()
	cpriv := key.NewPrivate()
	c := NewClient(cpriv, "http://"+ln.Addr().String()+"/derp", &ClientOptions{Logf: t.Logf})
	defer c.Close()
	c.ensureStarted()

	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(hangGuard))
	br, bw := bufio.NewReader(nc), bufio.NewWriter(nc)
	req, err := http.ReadRequest(br)
	if err != nil {
		t.Fatal(err)
	}
	if req.Method != "GET" || req.URL.Path != "/derp" || req.Header.Get("Upgrade") != "DERP" || req.Header.Get("Connection") != "Upgrade" {
		t.Fatalf("upgrade request %s %s %v", req.Method, req.URL, req.Header)
	}
	bw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n\r\n")
	writeFrame(bw, FrameServerKey, serverKeyPayload(srv.Public()), []byte("future bytes"))
	bw.Flush()

	ft, n, err := readFrameHeader(br)
	if err != nil || ft != FrameClientInfo {
		t.Fatalf("frame 0x%02x %v, want ClientInfo", ft, err)
	}
	b, _ := readSmallPayload(br, n, nil)
	k, ci, err := parseClientInfo(b, srv)
	if err != nil || k != cpriv.Public() || ci.Version != ProtocolVersion || !ci.CanAckPings {
		t.Fatalf("ClientInfo %s %+v %v", k.ShortString(), ci, err)
	}
	si, _ := serverInfoPayload(srv, k, &ServerInfo{Version: ProtocolVersion})
	writeFrame(bw, FrameServerInfo, si)
	writeFrame(bw, FramePing, []byte("pingpong"))
	bw.Flush()

	var sawPreferred, sawPong bool
	for !sawPreferred || !sawPong {
		ft, n, err := readFrameHeader(br)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := readSmallPayload(br, n, nil)
		switch ft {
		case FrameNotePreferred:
			if string(b) != "\x01" {
				t.Fatalf("NotePreferred %x, want 01", b)
			}
			sawPreferred = true
		case FramePong:
			if string(b) != "pingpong" {
				t.Fatalf("Pong %q", b)
			}
			sawPong = true
		}
	}
}

// TestClientClose: Recv and Send fail with net.ErrClosed after Close, even if never connected.
func TestClientClose(t *testing.T) {
	leakcheck.Check(t)
	c := NewClient(key.NewPrivate(), "http://127.0.0.1:1/derp", nil)
	done := make(chan error, 1)
	go func() { _, _, err := c.Recv(); done <- err }()
	c.Send(key.Public{}, []byte("queued while the relay is unreachable"))
	c.Close()
	if err := <-done; err != net.ErrClosed {
		t.Fatalf("Recv after Close: %v", err)
	}
	if err := c.Send(key.Public{}, nil); err != net.ErrClosed {
		t.Fatalf("Send after Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestSendNeverBlocks: with no relay, Send keeps returning at once and drops the oldest.
func TestSendNeverBlocks(t *testing.T) {
	leakcheck.Check(t)
	c := NewClient(key.NewPrivate(), "http://127.0.0.1:1/derp", nil)
	defer c.Close()
	for i := range 3 * clientSendQueue {
		if err := c.Send(key.Public{}, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if s := c.Stats(); s.SendDrops < 2*clientSendQueue {
		t.Fatalf("drops %d, want at least %d", s.SendDrops, 2*clientSendQueue)
	}
}

func TestNodeURL(t *testing.T) {
	for _, tc := range []struct {
		n    Node
		want string
	}{
		{Node{HostName: "127.0.0.1", DERPPort: 3340, InsecureForTests: true}, "http://127.0.0.1:3340/derp"},
		{Node{HostName: "derp.example.com"}, "https://derp.example.com/derp"},
		{Node{HostName: "derp.example.com", DERPPort: 8443}, "https://derp.example.com:8443/derp"},
		{Node{IPv6: "::1", InsecureForTests: true}, "http://[::1]:443/derp"},
		{Node{IPv4: "192.0.2.1"}, "https://192.0.2.1/derp"},
	} {
		if got := NodeURL(&tc.n); got != tc.want {
			t.Errorf("NodeURL(%+v) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
