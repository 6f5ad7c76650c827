package sshclient

import (
	"bufio"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// testServer is an x/crypto/ssh server speaking just enough of a shell for the tests: it
// echoes each stdin line, "exit N" ends with status N, and exec runs "exit N" or "stderr X".
type testServer struct {
	t       *testing.T
	signer  ssh.Signer
	banner  string
	ciphers []string

	mu       sync.Mutex
	ptyTerm  string
	ptyRows  int
	ptyCols  int
	resizes  chan [2]int
	sessions int
	wg       sync.WaitGroup
}

// testSigner returns a deterministic ed25519 host key; seed picks which one.
func testSigner(t *testing.T, seed byte) ssh.Signer {
	t.Helper()
	priv := ed25519.NewKeyFromSeed([]byte(strings.Repeat(string(rune('a'+seed)), ed25519.SeedSize)))
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func authorizedKey(s ssh.Signer) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey())))
}

func newTestServer(t *testing.T) *testServer {
	return &testServer{t: t, signer: testSigner(t, 0), banner: "Welcome to the test host\n", resizes: make(chan [2]int, 16)}
}

// pipe starts serving one connection and returns the client's end of it.
func (s *testServer) pipe() net.Conn {
	c, srv := bufferedPipe()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.serve(srv)
	}()
	s.t.Cleanup(func() { c.Close(); s.wg.Wait() })
	return c
}

func (s *testServer) serve(nc net.Conn) {
	defer nc.Close()
	cfg := &ssh.ServerConfig{
		NoClientAuth:   true,
		BannerCallback: func(ssh.ConnMetadata) string { return s.banner },
	}
	cfg.Ciphers = s.ciphers
	cfg.AddHostKey(s.signer)
	conn, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		return
	}
	defer conn.Close()
	go ssh.DiscardRequests(reqs)
	for nch := range chans {
		if nch.ChannelType() != "session" {
			nch.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.sessions++
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.session(ch, creqs)
		}()
	}
}

func (s *testServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	exit := func(code uint32) {
		ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, code))
		ch.Close()
	}
	for req := range reqs {
		switch req.Type {
		case "pty-req":
			var p struct {
				Term             string
				Cols, Rows, W, H uint32
				Modes            string
			}
			ssh.Unmarshal(req.Payload, &p)
			s.mu.Lock()
			s.ptyTerm, s.ptyRows, s.ptyCols = p.Term, int(p.Rows), int(p.Cols)
			s.mu.Unlock()
			req.Reply(true, nil)
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
						exit(code)
						return
					}
					fmt.Fprintf(ch, "%s\r\n", sc.Text())
				}
			}()
		case "exec":
			var p struct{ Command string }
			ssh.Unmarshal(req.Payload, &p)
			req.Reply(true, nil)
			var code uint32
			if msg, ok := strings.CutPrefix(p.Command, "stderr "); ok {
				fmt.Fprint(ch.Stderr(), msg)
				fmt.Fprint(ch, "out")
			} else if _, err := fmt.Sscanf(p.Command, "exit %d", &code); err != nil {
				code = 127
			}
			exit(code)
		default:
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}
}
