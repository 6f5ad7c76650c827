//go:build !js

package wsconn

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// newTestServer starts a WebSocket server on loopback: /echo echoes every message, /sizes answers each
// message with its length and a newline, /big sends one 100 KiB message, /flood sends 16 MiB without reading, /nosub accepts without the subprotocol.
func newTestServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	accept := func(w http.ResponseWriter, r *http.Request, subprotocols ...string) *websocket.Conn {
		wc, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: subprotocols, CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			return nil
		}
		wc.SetReadLimit(-1)
		return wc
	}
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		wc := accept(w, r, testSubprotocol)
		if wc == nil {
			return
		}
		defer wc.CloseNow()
		for {
			typ, b, err := wc.Read(r.Context())
			if err != nil {
				return
			}
			if err := wc.Write(r.Context(), typ, b); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/sizes", func(w http.ResponseWriter, r *http.Request) {
		wc := accept(w, r, testSubprotocol)
		if wc == nil {
			return
		}
		defer wc.CloseNow()
		for {
			_, b, err := wc.Read(r.Context())
			if err != nil {
				return
			}
			if err := wc.Write(r.Context(), websocket.MessageBinary, fmt.Appendf(nil, "%d\n", len(b))); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		wc := accept(w, r, testSubprotocol)
		if wc == nil {
			return
		}
		defer wc.CloseNow()
		wc.Write(r.Context(), websocket.MessageBinary, make([]byte, 100<<10))
		wc.Read(r.Context()) // until the client goes
	})
	mux.HandleFunc("/flood", func(w http.ResponseWriter, r *http.Request) {
		wc := accept(w, r, testSubprotocol)
		if wc == nil {
			return
		}
		defer wc.CloseNow()
		ctx := wc.CloseRead(r.Context())
		msg := make([]byte, 64<<10)
		for range 256 {
			if wc.Write(ctx, websocket.MessageBinary, msg) != nil {
				return
			}
		}
		<-ctx.Done()
	})
	mux.HandleFunc("/nosub", func(w http.ResponseWriter, r *http.Request) {
		wc := accept(w, r)
		if wc == nil {
			return
		}
		defer wc.CloseNow()
		wc.Read(r.Context())
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// closedURL returns a ws URL on a loopback port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "ws://" + addr + "/echo"
}

// wsBase returns the ws URL of srv.
func wsBase(srv *httptest.Server) string { return "ws" + strings.TrimPrefix(srv.URL, "http") }
