package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"

	"tsconnect/controlws"
)

// sshServer is a loopback x/crypto/ssh server with a line-echo "shell": each stdin line is
// echoed, "exit N" ends the session with status N; window-change sizes go to resizes.
type sshServer struct {
	ln      net.Listener
	signer  ssh.Signer
	banner  string
	resizes chan [2]int
	wg      sync.WaitGroup
}

func signer(t *testing.T, seed byte) ssh.Signer {
	s, err := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed([]byte(strings.Repeat(string(rune('a'+seed)), 32))))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pubLine(s ssh.Signer) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey())))
}

func newSSHServer(t *testing.T, banner string) *sshServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sshServer{ln: ln, signer: signer(t, 0), banner: banner, resizes: make(chan [2]int, 8)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *sshServer) serve(nc net.Conn) {
	defer nc.Close()
	cfg := &ssh.ServerConfig{NoClientAuth: true, BannerCallback: func(ssh.ConnMetadata) string { return s.banner }}
	cfg.AddHostKey(s.signer)
	conn, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		return
	}
	defer conn.Close()
	go ssh.DiscardRequests(reqs)
	for nch := range chans {
		ch, creqs, err := nch.Accept()
		if err != nil {
			return
		}
		go func() {
			defer ch.Close()
			for req := range creqs {
				switch req.Type {
				case "window-change":
					var p struct{ Cols, Rows, W, H uint32 }
					ssh.Unmarshal(req.Payload, &p)
					s.resizes <- [2]int{int(p.Rows), int(p.Cols)}
				case "shell":
					req.Reply(true, nil)
					go func() {
						sc := bufio.NewScanner(ch)
						for sc.Scan() {
							var code uint32
							if _, err := fmt.Sscanf(sc.Text(), "exit %d", &code); err == nil {
								ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, code))
								ch.Close()
								return
							}
							fmt.Fprintf(ch, "%s\r\n", sc.Text())
						}
					}()
				default:
					if req.WantReply {
						req.Reply(req.Type == "pty-req", nil)
					}
				}
			}
		}()
	}
}

// testEngine stands in for the node at the engine seam: Start returns startErr, Dial
// reaches the loopback SSH server (or fails with dialErr), NetMap returns nm.
type testEngine struct {
	startErr error
	dialErr  error
	server   *sshServer
	nm       *controlws.NetworkMap

	mu        sync.Mutex
	loggedOut bool
	closed    bool
	dialed    []string
}

func (e *testEngine) Start(ctx context.Context) error { return e.startErr }

func (e *testEngine) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	e.mu.Lock()
	e.dialed = append(e.dialed, addr)
	e.mu.Unlock()
	if e.dialErr != nil {
		return nil, e.dialErr
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", e.server.ln.Addr().String())
}

func (e *testEngine) NetMap() *controlws.NetworkMap { return e.nm }

func (e *testEngine) Logout(ctx context.Context) error {
	e.mu.Lock()
	e.loggedOut = true
	e.mu.Unlock()
	return nil
}

func (e *testEngine) Close() error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	return nil
}

// testMap holds one SSH peer "agent" pinned to hostKey, plus "nossh" and "nokey".
func testMap(hostKey string) *controlws.NetworkMap {
	pfx := func(s string) []netip.Prefix {
		var out []netip.Prefix
		for _, a := range strings.Fields(s) {
			out = append(out, netip.PrefixFrom(netip.MustParseAddr(a), netip.MustParseAddr(a).BitLen()))
		}
		return out
	}
	return &controlws.NetworkMap{
		Self:   controlws.Node{ID: 1, Name: "browser", Addresses: pfx("100.64.0.1")},
		Domain: "demo.tsconnect",
		Peers: []controlws.Node{
			{ID: 2, Name: "agent", Addresses: pfx("fd7a:115c:a1e0::2 100.64.0.2"), SSH: true, SSHHostKeys: []string{hostKey}},
			{ID: 3, Name: "nossh", Addresses: pfx("100.64.0.3")},
			{ID: 4, Name: "nokey", Addresses: pfx("100.64.0.4"), SSH: true},
		},
	}
}

// newTestIPN returns an IPN on eng; control lives at controlURL.
func newTestIPN(t *testing.T, eng *testEngine) *IPN {
	p, err := NewIPN(Config{ControlURL: "http://127.0.0.1:8080", AuthKey: "tskey-test"}, func(context.Context, string) ([]byte, error) {
		return nil, errors.New("no HTTP in this test")
	})
	if err != nil {
		t.Fatal(err)
	}
	p.newEng = func(Config, func(context.Context, string) ([]byte, error), *IPN) (engine, error) { return eng, nil }
	return p
}
