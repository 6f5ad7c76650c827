//go:build !js

package derpws

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/coder/websocket"
)

// ServeHTTP serves the relay. Mount it at "/derp" and "/derp/":
//   - GET /derp with "Upgrade: DERP": 101 Switching Protocols (skipped when the request has
//     "Derp-Fast-Start: 1"), then DERP frames on the connection;
//   - GET /derp as a WebSocket with subprotocol "derp": DERP frames as a byte stream of binary messages;
//   - GET /derp/probe and /derp/latency-check: 200 with "Access-Control-Allow-Origin: *";
//   - anything else: 426 Upgrade Required (503 once the server is closed, or while it has
//     ServerOptions.MaxConns connections).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; strings.HasSuffix(p, "/probe") || strings.HasSuffix(p, "/latency-check") {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.WriteHeader(http.StatusOK)
		return
	}
	s.mu.RLock()
	closed, full := s.closed, s.maxConns > 0 && len(s.conns) >= s.maxConns
	s.mu.RUnlock()
	if closed {
		http.Error(w, "derp: relay shutting down", http.StatusServiceUnavailable)
		return
	}
	if full {
		s.m.connsRefused.Add(1)
		w.Header().Set("Retry-After", "5")
		http.Error(w, "derp: relay has its maximum of connections; try again later", http.StatusServiceUnavailable)
		return
	}
	switch strings.ToLower(r.Header.Get("Upgrade")) {
	case "websocket":
		s.serveWebSocket(w, r)
	case "derp":
		s.serveUpgrade(w, r)
	default:
		http.Error(w, "derp: this endpoint needs a connection upgrade (Upgrade: DERP, or a WebSocket with subprotocol derp)", http.StatusUpgradeRequired)
	}
}

// serveUpgrade takes over the connection of an "Upgrade: DERP" request.
func (s *Server) serveUpgrade(w http.ResponseWriter, r *http.Request) {
	fastStart := r.Header.Get("Derp-Fast-Start") == "1"
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "derp: the HTTP upgrade needs HTTP/1.1; use a WebSocket", http.StatusInternalServerError)
		return
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		s.logf("derpws: hijack: %v", err)
		return
	}
	if !fastStart {
		resp := "HTTP/1.1 101 Switching Protocols\r\n" +
			"Upgrade: DERP\r\n" +
			"Connection: Upgrade\r\n" +
			"Derp-Version: " + strconv.Itoa(ProtocolVersion) + "\r\n" +
			"Derp-Public-Key: " + s.pub.String() + "\r\n\r\n"
		if _, err := io.WriteString(nc, resp); err != nil {
			nc.Close()
			return
		}
	}
	// Bytes the HTTP server already buffered belong to the DERP stream.
	var src io.Reader = nc
	if n := brw.Reader.Buffered(); n > 0 {
		head, _ := brw.Reader.Peek(n)
		src = io.MultiReader(bytes.NewReader(bytes.Clone(head)), nc)
	}
	s.serveConn(r.Context(), nc, bufio.NewReaderSize(src, readBufSize))
}

// serveWebSocket accepts a WebSocket carrying DERP and serves it as a byte stream.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	wc, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols: []string{Subprotocol},
		// Any origin may connect: the relay authenticates each client by its key (the ClientInfo
		// box), never by cookies or origin, so a page of another origin gains nothing.
		InsecureSkipVerify: true,
		// Packets are WireGuard ciphertext: compression would cost CPU and save nothing.
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		return // Accept has answered the request
	}
	if wc.Subprotocol() != Subprotocol {
		wc.Close(websocket.StatusPolicyViolation, `DERP needs the WebSocket subprotocol "derp"`)
		return
	}
	nc := newWSConn(wc)
	s.serveConn(r.Context(), nc, bufio.NewReaderSize(nc, readBufSize))
}
