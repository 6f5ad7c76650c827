// Command rtcspike is the evidence for the WebRTC spike (issue 21 part 6): an agent stand-in
// that echoes the browser's packets over a WebRTC data channel (pion/webrtc) and over the
// DERP relay (a derpws client), so e2e/browser/rtcbench.mjs can measure both paths side by side.
//
// Usage:
//
//	rtcspike relay [--listen 127.0.0.1:0]
//	rtcspike agent --relay http://127.0.0.1:PORT/derp --page DIR [--listen 127.0.0.1:0]
//
// "relay" serves a DERP relay built as "tsconnect derp --dev" builds it and prints
// "RELAY: URL". "agent" serves, on loopback only, the page (DIR/rtcbench.html), the spike's
// signalling (POST /rtc/offer: an SDP offer in, the answer out once ICE gathering is done) and
// GET /relay/info (the relay's WebSocket URL, the agent's key and a ClientInfo frame payload
// the tool sealed for a fresh browser key), and prints "URL: http://ADDR/". A test tool: a
// production agent would get the offer through control or the relay, authenticated by node keys.
//
// Both paths speak one echo format, the first byte of each packet naming its kind (echoKind).
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/nacl/box"

	"tsconnect/derpws"
	"tsconnect/key"
)

// maxPacket bounds every packet the tool takes from the browser, on either path.
const maxPacket = 64 << 10

// Packet kinds, the first byte of every packet on both paths.
const (
	kindPing  = 'P' // echoed back unchanged
	kindData  = 'D' // counted, not answered
	kindReset = 'R' // zeroes the counters; answered with "R"
	kindStats = 'S' // answered with "S" and the counters as JSON
)

func main() {
	log.SetFlags(0)
	if len(os.Args) < 2 {
		log.Fatal("usage: rtcspike relay|agent [flags]")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "relay":
		err = runRelay(ctx, os.Args[2:])
	case "agent":
		err = runAgent(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (want relay or agent)", os.Args[1])
	}
	if err != nil {
		log.Fatalf("rtcspike: %v", err)
	}
}

// listenLoopback listens on addr, which must be a loopback address: the tool is for tests.
func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--listen %q: %v", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("--listen %q is not a loopback address; the spike listens on loopback only", addr)
	}
	return net.Listen("tcp", addr)
}

// serve runs h on ln until ctx ends.
func serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		hs.Close()
	}()
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// runRelay serves a DERP relay as "tsconnect derp --dev" does: a fresh key, default limits.
func runRelay(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("relay", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "loopback address to serve the relay on")
	fs.Parse(args)
	ln, err := listenLoopback(*listen)
	if err != nil {
		return err
	}
	srv := derpws.NewServer(key.NewPrivate(), &derpws.ServerOptions{Logf: log.Printf})
	defer srv.Close()
	fmt.Printf("RELAY: http://%s/derp\n", ln.Addr())
	return serve(ctx, ln, relayHandler(srv))
}

// relayHandler serves srv at /derp as "tsconnect derp" does.
func relayHandler(srv *derpws.Server) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/derp", srv)
	mux.Handle("/derp/", srv)
	return mux
}

// stats are what one path's echo has seen of kindData packets since the last kindReset, as the
// kindStats reply carries them.
type stats struct {
	Packets int   `json:"packets"`
	Bytes   int   `json:"bytes"`
	FirstNs int64 `json:"firstNs"` // arrival of the first packet, Unix ns
	LastNs  int64 `json:"lastNs"`  // arrival of the last packet, Unix ns
	// RecvDrops, on the relay path, is how many packets the tool's relay client dropped in
	// all (its receive queue was full), so the page can tell the tool's losses from the relay's.
	RecvDrops uint64 `json:"recvDrops"`
}

// counters keep one path's stats.
type counters struct {
	mu    sync.Mutex
	s     stats
	drops func() uint64 // the relay client's drops; nil on the data channel
}

// handle applies one packet to c and returns the reply to send, if any.
func (c *counters) handle(pkt []byte) []byte {
	if len(pkt) == 0 || len(pkt) > maxPacket {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch pkt[0] {
	case kindPing:
		return append([]byte(nil), pkt...)
	case kindData:
		now := time.Now().UnixNano()
		if c.s.Packets == 0 {
			c.s.FirstNs = now
		}
		c.s.Packets++
		c.s.Bytes += len(pkt)
		c.s.LastNs = now
	case kindReset:
		c.s = stats{}
		return []byte{kindReset}
	case kindStats:
		if c.drops != nil {
			c.s.RecvDrops = c.drops()
		}
		b, _ := json.Marshal(c.s)
		return append([]byte{kindStats}, b...)
	}
	return nil
}

// relayServerKey asks the relay at relayURL for its public key (the Derp-Public-Key header
// of the native upgrade) and hangs up.
func relayServerKey(ctx context.Context, relayURL string) (key.Public, error) {
	u, err := url.Parse(relayURL)
	if err != nil {
		return key.Public{}, err
	}
	var d net.Dialer
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return key.Public{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n\r\n", u.Path, u.Host)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return key.Public{}, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return key.Public{}, fmt.Errorf("relay %s answered %s to the upgrade", relayURL, resp.Status)
	}
	return key.ParsePublic(resp.Header.Get("Derp-Public-Key"))
}

// clientInfoPayload seals a ClientInfo for priv to the relay's key: the browser's Worker in
// the spike has no NaCl box, so the tool does its one handshake step for it (production's
// browser client is the wasm's derpws, which seals its own).
func clientInfoPayload(priv key.Private, server key.Public) ([]byte, error) {
	msg, err := json.Marshal(derpws.ClientInfo{Version: 2, CanAckPings: true, AppName: "rtcspike"})
	if err != nil {
		return nil, err
	}
	var nonce [24]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, err
	}
	pub := priv.Public()
	pk, sk := [32]byte(server), [32]byte(priv)
	out := append(pub[:], nonce[:]...)
	return box.Seal(out, msg, &nonce, &pk, &sk), nil
}

// rtcAnswerer answers data channel offers (pion in rtc.go; a refusal in a nortc build).
type rtcAnswerer interface {
	// Answer takes an SDP offer and returns the answer once ICE gathering is done (no trickle).
	Answer(ctx context.Context, offer string) (string, error)
	// Close ends every peer connection.
	Close() error
}

// agent is the echoing end of both paths.
type agent struct {
	relayURL  string
	serverKey key.Public
	derp      *derpws.Client
	viaRelay  counters
	viaRTC    counters
	rtc       rtcAnswerer
}

func runAgent(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("agent", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "loopback address to serve the page and signalling on")
	relayURL := fs.String("relay", "", "the relay's URL, http://HOST:PORT/derp")
	page := fs.String("page", "", "directory holding rtcbench.html")
	sctpRecv := fs.Int("sctp-recv-buffer", 0, "pion's SCTP receive buffer in bytes (0: pion's default, 1 MiB)")
	fs.Parse(args)
	if *relayURL == "" || *page == "" {
		return errors.New("agent needs --relay and --page")
	}
	a, err := newAgent(ctx, *relayURL, *sctpRecv)
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := listenLoopback(*listen)
	if err != nil {
		return err
	}
	fmt.Printf("URL: http://%s/\n", ln.Addr())
	return serve(ctx, ln, a.handler(*page))
}

// newAgent connects to the relay at relayURL and readies the data channel answerer.
func newAgent(ctx context.Context, relayURL string, sctpRecvBuffer int) (*agent, error) {
	sk, err := relayServerKey(ctx, relayURL)
	if err != nil {
		return nil, fmt.Errorf("learning the relay's key: %v", err)
	}
	a := &agent{relayURL: relayURL, serverKey: sk}
	a.rtc, err = newRTCAnswerer(&a.viaRTC, sctpRecvBuffer)
	if err != nil {
		return nil, err
	}
	a.derp = derpws.NewClient(key.NewPrivate(), relayURL, nil)
	a.derp.Start()
	a.viaRelay.drops = func() uint64 { return a.derp.Stats().RecvDrops }
	go a.echoRelay()
	return a, nil
}

// Close ends the relay client and every peer connection.
func (a *agent) Close() error {
	a.rtc.Close()
	return a.derp.Close()
}

// handler serves the page from dir, the relay info and the signalling.
func (a *agent) handler(dir string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		// Cross-origin isolated, so the Worker's performance.now() is fine-grained (5 µs, not 100 µs).
		w.Header().Set("Cross-Origin-Opener-Policy", "same-origin")
		w.Header().Set("Cross-Origin-Embedder-Policy", "require-corp")
		http.ServeFile(w, r, filepath.Join(dir, "rtcbench.html"))
	})
	mux.HandleFunc("GET /relay/info", a.serveRelayInfo)
	mux.HandleFunc("POST /rtc/offer", a.serveOffer)
	return mux
}

// echoRelay answers the packets that come through the relay, to their sender.
func (a *agent) echoRelay() {
	for {
		src, pkt, err := a.derp.Recv()
		if err != nil {
			return
		}
		if reply := a.viaRelay.handle(pkt); reply != nil {
			a.derp.Send(src, reply)
		}
	}
}

// relayInfo is what GET /relay/info tells the page.
type relayInfo struct {
	URL        string `json:"url"`        // the relay's WebSocket URL
	AgentKey   string `json:"agentKey"`   // hex: where the page sends its packets
	ClientInfo string `json:"clientInfo"` // base64 ClientInfo payload for a fresh browser key
}

func (a *agent) serveRelayInfo(w http.ResponseWriter, r *http.Request) {
	payload, err := clientInfoPayload(key.NewPrivate(), a.serverKey)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	u, _ := url.Parse(a.relayURL)
	u.Scheme = "ws"
	pub := a.derp.PublicKey()
	json.NewEncoder(w).Encode(relayInfo{URL: u.String(), AgentKey: pub.String(), ClientInfo: base64.StdEncoding.EncodeToString(payload)})
}

// sdp is a session description as the browser's RTCSessionDescription serialises it.
type sdp struct {
	Type string `json:"type"`
	SDP  string `json:"sdp"`
}

// maxOffer bounds the offer a page may send.
const maxOffer = 64 << 10

func (a *agent) serveOffer(w http.ResponseWriter, r *http.Request) {
	var offer sdp
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxOffer)).Decode(&offer); err != nil {
		http.Error(w, "offer: "+err.Error(), http.StatusBadRequest)
		return
	}
	if offer.Type != "offer" || offer.SDP == "" {
		http.Error(w, fmt.Sprintf("offer: type %q with %d bytes of SDP, want an offer", offer.Type, len(offer.SDP)), http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	answer, err := a.rtc.Answer(ctx, offer.SDP)
	if err != nil {
		http.Error(w, "answer: "+err.Error(), http.StatusBadRequest)
		return
	}
	json.NewEncoder(w).Encode(sdp{Type: "answer", SDP: answer})
}
