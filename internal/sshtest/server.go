// Package sshtest is a fake SSH server for the tests of SSH clients: an x/crypto/ssh server
// whose shell echoes lines and which records what the client asked for. It builds for js/wasm.
package sshtest

import (
	"crypto/ed25519"
	"net"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// Server accepts any client without authentication. Its "shell" echoes each stdin line
// (followed by CRLF) and "exit N" ends the session with status N; exec runs "exit N", or
// "stderr X", which writes X to stderr and "out" to stdout and exits 0; any other command
// exits 127. Only "session" channels are accepted.
type Server struct {
	// Signer is the host key, Signer(t, 0) unless set before the first connection.
	Signer ssh.Signer
	// Banner is sent before authentication if not empty.
	Banner string
	// Ciphers, if set, are the only ciphers the server offers.
	Ciphers []string
	// Resizes receives rows and columns of every window-change request (16 are buffered).
	Resizes chan [2]int

	t        testing.TB
	mu       sync.Mutex
	ptyTerm  string
	ptyRows  int
	ptyCols  int
	sessions int
	wg       sync.WaitGroup
}

// New returns a server that, when t ends, waits for the connections it served to end,
// after closing its listeners and the client ends of its pipes.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{Signer: Signer(t, 0), Resizes: make(chan [2]int, 16), t: t}
	t.Cleanup(s.wg.Wait)
	return s
}

// Signer returns a deterministic ed25519 host key; seed picks which one.
func Signer(t testing.TB, seed byte) ssh.Signer {
	t.Helper()
	priv := ed25519.NewKeyFromSeed([]byte(strings.Repeat(string(rune('a'+seed)), ed25519.SeedSize)))
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// AuthorizedKey returns s's public key as an authorized_keys line without comment.
func AuthorizedKey(s ssh.Signer) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey())))
}

// PTY returns the terminal type and size of the last pty-req.
func (s *Server) PTY() (term string, rows, cols int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ptyTerm, s.ptyRows, s.ptyCols
}

// Sessions returns how many session channels the server accepted.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// Wait waits until every connection the server accepted so far has ended.
func (s *Server) Wait() { s.wg.Wait() }

// Pipe serves one in-memory connection and returns the client's end of it, closed when
// the test ends.
func (s *Server) Pipe() net.Conn {
	c, srv := Pipe()
	s.t.Cleanup(func() { c.Close() })
	s.goServe(srv)
	return c
}

// Listen serves connections on a loopback listener until the test ends and returns its
// address.
func (s *Server) Listen() string {
	s.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { ln.Close() })
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.goServe(c)
		}
	}()
	return ln.Addr().String()
}

func (s *Server) goServe(nc net.Conn) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.serve(nc)
	}()
}

func (s *Server) serve(nc net.Conn) {
	defer nc.Close()
	cfg := &ssh.ServerConfig{NoClientAuth: true}
	if s.Banner != "" {
		cfg.BannerCallback = func(ssh.ConnMetadata) string { return s.Banner }
	}
	cfg.Ciphers = s.Ciphers
	cfg.AddHostKey(s.Signer)
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
