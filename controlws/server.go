//go:build !js

package controlws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"tsconnect/key"
)

// HandshakeTimeout bounds AcceptHTTP's handshake, so a client that connects and stalls does not hold a handler.
const HandshakeTimeout = 30 * time.Second

// Accept runs the server side of the handshake over nc, an accepted connection (for a WebSocket,
// websocket.NetConn(ctx, c, websocket.MessageBinary)). offer is the version the client offered (ParseOffer
// of its URL's query; 1 for none): Accept answers it with the version both speak, MinVersion to Version, or
// refuses an offer older than MinVersion with an *Error (CodeUnsupportedVer) whose message it also sent a
// client of version 2 on. It returns only after a transport message from the client decrypted, so
// Conn.PeerKey is the client's proven machine key; a replayed first handshake message never gets that far.
// ctx bounds the handshake only. On error the caller closes nc.
func Accept(ctx context.Context, nc net.Conn, serverKey key.Private, offer int) (*Conn, error) {
	return respond(ctx, nc, serverKey, offer, supported)
}

// AcceptHTTP upgrades r (a request to Path) to the control WebSocket and runs Accept over it with the
// offer in r's VersionParam. It answers the HTTP request itself when the upgrade fails (400 for a malformed
// offer), and closes a refused client's WebSocket with CloseVersionRefused and the refusal as the reason,
// which a version 1 client shows in its error. The Conn lives on r's context: serve it before the handler
// returns, and Close it when done.
func AcceptHTTP(w http.ResponseWriter, r *http.Request, serverKey key.Private) (*Conn, error) {
	return acceptHTTP(w, r, serverKey, supported)
}

// acceptHTTP is AcceptHTTP speaking the versions vr (tests run servers of other ranges).
func acceptHTTP(w http.ResponseWriter, r *http.Request, serverKey key.Private, vr versionRange) (*Conn, error) {
	offer, err := ParseOffer(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, fmt.Errorf("controlws: from %s: %w", r.RemoteAddr, err)
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// Any origin: the socket authenticates by Noise static keys, never by cookies, and embedding pages connect cross-origin.
		InsecureSkipVerify: true,
		// Compression off: the payload is Noise ciphertext, which does not compress.
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		return nil, fmt.Errorf("controlws: upgrading %s: %w", r.RemoteAddr, err)
	}
	nc := websocket.NetConn(r.Context(), ws, websocket.MessageBinary)
	ws.SetReadLimit(maxWireMsg) // after NetConn, which lifts the limit: one Noise message per WebSocket message
	ctx, cancel := context.WithTimeout(r.Context(), HandshakeTimeout)
	defer cancel()
	c, err := respond(ctx, nc, serverKey, offer, vr)
	var ce *Error
	if errors.As(err, &ce) && ce.Code == CodeUnsupportedVer {
		// Waits (briefly) for the client's close frame, which a client that reads answers.
		ws.Close(CloseVersionRefused, ce.Message)
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("controlws: from %s: %w", r.RemoteAddr, err)
	}
	return c, nil
}

// ServeKey answers GET KeyPath with the server's static key and protocol versions as JSON KeyResponse,
// readable from any origin (embedding pages fetch it).
func ServeKey(w http.ResponseWriter, r *http.Request, pub key.Public) { serveKey(w, r, pub, supported) }

// serveKey is ServeKey announcing the versions vr.
func serveKey(w http.ResponseWriter, r *http.Request, pub key.Public, vr versionRange) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		w.Header().Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, _ := json.Marshal(KeyResponse{Key: pub, MinVersion: vr.min, MaxVersion: vr.max}) // cannot fail: a key and ints
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(body)
}

// KeyHandler returns an http.Handler that serves pub as ServeKey does.
func KeyHandler(pub key.Public) http.Handler { return keyHandler(pub, supported) }

// keyHandler is KeyHandler announcing the versions vr.
func keyHandler(pub key.Public, vr versionRange) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serveKey(w, r, pub, vr) })
}
