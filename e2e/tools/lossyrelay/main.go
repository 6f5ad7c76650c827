// Command lossyrelay is the lossy path of the terminal benchmark: a proxy in front of a
// control server whose relay drops a share of the packets it carries. Everything but /derp
// passes through unchanged (pages, API, the control WebSocket); on /derp (both transports:
// the native HTTP upgrade and the browser's WebSocket) it reads the DERP frame stream and
// drops each SendPacket and RecvPacket frame with probability --drop, so WireGuard packets
// are lost between the nodes while the relay connections themselves stay intact.
//
// Usage:
//
//	lossyrelay --upstream http://127.0.0.1:PORT [--listen 127.0.0.1:0] [--drop 0.01]
//
// It prints "URL: http://127.0.0.1:PORT" once listening; run control with --server-url set
// to that URL so the DERP map it hands out points here. Loopback only; a test tool.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/coder/websocket"
)

// The DERP frames that carry packets (docs/protocols.md) and the largest frame passed on.
const (
	frameSendPacket = 0x04
	frameRecvPacket = 0x05
	maxFrame        = 1 << 20
)

var dropped, passed atomic.Uint64

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "loopback address to listen on")
	upstream := flag.String("upstream", "", "control server's URL (http://127.0.0.1:PORT)")
	drop := flag.Float64("drop", 0.01, "share of packet frames to drop (0..1)")
	flag.Parse()
	up, err := url.Parse(*upstream)
	if err != nil || up.Scheme != "http" || up.Host == "" {
		log.Fatalf("lossyrelay: --upstream %q is not an http:// URL", *upstream)
	}
	if *drop < 0 || *drop > 1 {
		log.Fatalf("lossyrelay: --drop %v is not within 0..1", *drop)
	}
	host, _, err := net.SplitHostPort(*listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		log.Fatalf("lossyrelay: --listen %q is not a loopback address", *listen)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(up)
	d := dropper{p: *drop}
	mux := http.NewServeMux()
	mux.Handle("/", proxy)
	mux.Handle("/derp/", proxy) // probe and latency check
	mux.HandleFunc("/derp", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.EqualFold(r.Header.Get("Upgrade"), "DERP"):
			d.native(w, r, up)
		case strings.EqualFold(r.Header.Get("Upgrade"), "websocket"):
			d.websocket(w, r, up)
		default:
			proxy.ServeHTTP(w, r)
		}
	})
	mux.HandleFunc("/lossyrelay/stats", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "dropped %d passed %d\n", dropped.Load(), passed.Load())
	})
	fmt.Printf("URL: http://%s\n", ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}

// dropper pumps DERP frame streams, dropping packet frames with probability p.
type dropper struct{ p float64 }

// websocket relays a browser's DERP-over-WebSocket connection to upstream's.
func (d dropper) websocket(w http.ResponseWriter, r *http.Request, up *url.URL) {
	hdr := http.Header{}
	if o := r.Header.Get("Origin"); o != "" {
		hdr.Set("Origin", o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	u := *up
	u.Scheme, u.Path = "ws", "/derp"
	uc, _, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{Subprotocols: []string{"derp"}, HTTPHeader: hdr})
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer uc.CloseNow()
	uc.SetReadLimit(maxFrame + 5)
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"derp"}, InsecureSkipVerify: true})
	if err != nil {
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(maxFrame + 5)
	client := websocket.NetConn(ctx, c, websocket.MessageBinary)
	server := websocket.NetConn(ctx, uc, websocket.MessageBinary)
	d.pumpBoth(client, bufio.NewReader(client), server, bufio.NewReader(server))
}

// native relays a native DERP connection (HTTP upgrade) to upstream.
func (d dropper) native(w http.ResponseWriter, r *http.Request, up *url.URL) {
	server, err := net.Dial("tcp", up.Host)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer server.Close()
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "no hijack", http.StatusInternalServerError)
		return
	}
	client, crw, err := hj.Hijack()
	if err != nil {
		return
	}
	defer client.Close()
	if err := r.Write(server); err != nil {
		return
	}
	sr := bufio.NewReader(server)
	// The 101 answer passes as it is (none with Derp-Fast-Start: frames come at once).
	if b, err := sr.Peek(5); err == nil && string(b) == "HTTP/" {
		var head []byte
		for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
			line, err := sr.ReadSlice('\n')
			if err != nil || len(head) > 16<<10 {
				return
			}
			head = append(head, line...)
		}
		if _, err := client.Write(head); err != nil {
			return
		}
	}
	d.pumpBoth(client, crw.Reader, server, sr)
}

// pumpBoth pumps client → server (dropping SendPacket) and server → client (dropping
// RecvPacket) until either side ends.
func (d dropper) pumpBoth(client io.WriteCloser, cr *bufio.Reader, server io.WriteCloser, sr *bufio.Reader) {
	done := make(chan struct{}, 2)
	go func() { d.pump(server, cr, frameSendPacket); client.Close(); server.Close(); done <- struct{}{} }()
	go func() { d.pump(client, sr, frameRecvPacket); client.Close(); server.Close(); done <- struct{}{} }()
	<-done
	<-done
}

// pump copies frames from r to w, dropping frames of type lossy with probability d.p;
// a frame is written at once when no more input is buffered.
func (d dropper) pump(w io.Writer, r *bufio.Reader, lossy byte) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var hdr [5]byte
	buf := make([]byte, 64<<10)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return err
		}
		n := binary.BigEndian.Uint32(hdr[1:])
		if n > maxFrame {
			return errors.New("frame too large")
		}
		if int(n) > len(buf) {
			buf = make([]byte, n)
		}
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return err
		}
		switch {
		case hdr[0] == lossy && rand.Float64() < d.p:
			dropped.Add(1)
		default:
			if hdr[0] == lossy {
				passed.Add(1)
			}
			bw.Write(hdr[:])
			bw.Write(buf[:n])
		}
		if r.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
	}
}
