//go:build !js

package derpws

import (
	"errors"

	"tsconnect/key"
)

// meshPeer is this relay's connection to another relay of its region: a Client that showed
// the mesh key, watches the peer's clients and carries ForwardPackets to them.
type meshPeer struct {
	s   *Server
	url string
	c   *Client
}

// MeshWith connects the relay to the other relays of its region at urls ("http(s)://host:port/derp"),
// which must share its ServerOptions.MeshKey. Each connection sends WatchConns, learns which keys
// are connected there, and carries packets for them as ForwardPacket frames; it reconnects until
// Close. Packets from the peers' clients to this relay's clients arrive the same way, over the
// peers' own mesh connections to this relay.
func (s *Server) MeshWith(urls ...string) error {
	for _, u := range urls {
		if err := s.MeshWithAt(u, ""); err != nil {
			return err
		}
	}
	return nil
}

// MeshWithAt is MeshWith for one relay reached at addr (ip:port) rather than at its URL's
// host, which still names it for TLS and the Host header: the relays of control replicas
// that share one public name each mesh with the others' own addresses. Empty addr dials
// the URL's host.
func (s *Server) MeshWithAt(url, addr string) error {
	if s.meshKey == "" {
		return errors.New("derpws: MeshWith needs ServerOptions.MeshKey")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errServerClosed
	}
	name := url
	if addr != "" {
		name += " at " + addr
	}
	mp := &meshPeer{s: s, url: url}
	logf := s.logf
	mp.c = NewClient(s.priv, url, &ClientOptions{
		Logf:     func(f string, a ...any) { logf("derpws: mesh "+name+": "+f, a...) },
		MeshKey:  s.meshKey,
		DialAddr: addr,
		OnConnect: func() {
			s.m.meshConnects.Add(1)
			logf("derpws: mesh: watching %s", name)
		},
	})
	mp.c.watcher = mp
	mp.c.ensureStarted()
	s.mesh = append(s.mesh, mp)
	return nil
}

func (mp *meshPeer) present(k key.Public) {
	if k == mp.s.pub {
		return
	}
	mp.s.mu.Lock()
	mp.s.fwd[k] = mp.c
	mp.s.mu.Unlock()
}

func (mp *meshPeer) gone(k key.Public) {
	mp.s.mu.Lock()
	if mp.s.fwd[k] == mp.c {
		delete(mp.s.fwd, k)
	}
	mp.s.mu.Unlock()
}

func (mp *meshPeer) reset() {
	mp.s.mu.Lock()
	for k, c := range mp.s.fwd {
		if c == mp.c {
			delete(mp.s.fwd, k)
		}
	}
	mp.s.mu.Unlock()
}
