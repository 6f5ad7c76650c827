package interop

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	stockderp "tailscale.com/derp"
	"tailscale.com/derp/derphttp"
	"tailscale.com/net/netmon"
	stockkey "tailscale.com/types/key"

	"tsconnect/derpws"
	"tsconnect/key"
)

// derperBin is the stock relay program, built from the pinned module in TestMain.
var derperBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "derp-interop")
	if err != nil {
		panic(err)
	}
	derperBin = filepath.Join(dir, "derper")
	out, err := exec.Command("go", "build", "-o", derperBin, "tailscale.com/cmd/derper").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building the stock derper: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// hangGuard bounds waits that only end if the code works; it is not a speed assertion.
const hangGuard = 30 * time.Second

// endpoint is one DERP client of either make, seen through the same small interface.
type endpoint interface {
	pub() key.Public
	send(dst key.Public, pkt []byte) error
	recv() (key.Public, []byte, error)
	close()
}

// ours is our client.
type ours struct{ c *derpws.Client }

func newOurs(t *testing.T, url string, ws bool) *ours {
	c := derpws.NewClient(key.NewPrivate(), url, &derpws.ClientOptions{Logf: t.Logf, UseWebSocket: ws})
	t.Cleanup(func() { c.Close() })
	return &ours{c}
}

func (o *ours) pub() key.Public                       { return o.c.PublicKey() }
func (o *ours) send(dst key.Public, pkt []byte) error { return o.c.Send(dst, pkt) }
func (o *ours) recv() (key.Public, []byte, error)     { return o.c.Recv() }
func (o *ours) close()                                { o.c.Close() }

// stock is the stock client (derphttp, the HTTP-upgrade transport).
type stock struct {
	c *derphttp.Client
	k key.Public
}

func newStock(t *testing.T, url string) *stock {
	priv := stockkey.NewNode()
	c, err := derphttp.NewClient(priv, url, t.Logf, netmon.NewStatic())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("stock client connecting to %s: %v", url, err)
	}
	return &stock{c: c, k: toOurs(priv.Public())}
}

func toOurs(k stockkey.NodePublic) key.Public {
	var p key.Public
	copy(p[:], k.AppendTo(nil))
	return p
}

func toStock(k key.Public) stockkey.NodePublic {
	var p stockkey.NodePublic
	if err := p.UnmarshalText([]byte("nodekey:" + hex.EncodeToString(k[:]))); err != nil {
		panic(err)
	}
	return p
}

func (s *stock) pub() key.Public                       { return s.k }
func (s *stock) send(dst key.Public, pkt []byte) error { return s.c.Send(toStock(dst), pkt) }
func (s *stock) close()                                { s.c.Close() }
func (s *stock) recv() (key.Public, []byte, error) {
	for {
		m, err := s.c.Recv()
		if err != nil {
			return key.Public{}, nil, err
		}
		if p, ok := m.(stockderp.ReceivedPacket); ok {
			return toOurs(p.Source), append([]byte(nil), p.Data...), nil
		}
	}
}

// exchange sends from a to b and back until each has received a packet with the right
// source and content. Sending repeats because a packet sent before the peer is connected
// is dropped, as DERP does.
func exchange(t *testing.T, a, b endpoint) {
	t.Helper()
	one := func(from, to endpoint, msg string) {
		t.Helper()
		type res struct {
			src key.Public
			pkt []byte
			err error
		}
		got := make(chan res, 1)
		go func() {
			for {
				src, pkt, err := to.recv()
				if err != nil || string(pkt) == msg {
					got <- res{src, pkt, err}
					return
				}
			}
		}()
		deadline := time.After(hangGuard)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if err := from.send(to.pub(), []byte(msg)); err != nil {
				t.Fatalf("send: %v", err)
			}
			select {
			case r := <-got:
				if r.err != nil {
					t.Fatalf("recv: %v", r.err)
				}
				if r.src != from.pub() {
					t.Fatalf("%q arrived from %s, want %s", msg, r.src.ShortString(), from.pub().ShortString())
				}
				return
			case <-tick.C:
			case <-deadline:
				t.Fatalf("%q never arrived", msg)
			}
		}
	}
	one(a, b, "hello from a "+a.pub().ShortString())
	one(b, a, "hello from b "+b.pub().ShortString())
}

// ourRelay serves our relay on loopback.
func ourRelay(t *testing.T) string {
	s := derpws.NewServer(key.NewPrivate(), &derpws.ServerOptions{Logf: t.Logf})
	mux := http.NewServeMux()
	mux.Handle("/derp", s)
	mux.Handle("/derp/", s)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		s.Close()
		hs.Close()
	})
	return hs.URL + "/derp"
}

// stockRelay runs the stock derper on a free loopback port (plain HTTP, no STUN).
func stockRelay(t *testing.T, extra ...string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	args := append([]string{"-a", addr, "-http-port=-1", "-stun=false",
		"-c", filepath.Join(dir, "derper.json"), "-certdir", dir}, extra...)
	cmd := exec.Command(derperBin, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("derper output:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(hangGuard)
	for {
		resp, err := http.Get("http://" + addr + "/derp/probe")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stock derper never answered on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "http://" + addr + "/derp"
}

// TestStockClientsThroughOurRelay: two stock clients, and a stock client with ours, exchange
// packets through our relay in both directions with the right source keys.
func TestStockClientsThroughOurRelay(t *testing.T) {
	url := ourRelay(t)
	a, b := newStock(t, url), newStock(t, url)
	exchange(t, a, b)
	exchange(t, newStock(t, url), newOurs(t, url, false))
}

// TestOurClientsThroughStockRelay: two of our clients (HTTP upgrade and WebSocket), and one of
// ours with a stock client, exchange packets through the stock relay in both directions.
func TestOurClientsThroughStockRelay(t *testing.T) {
	url := stockRelay(t)
	exchange(t, newOurs(t, url, false), newOurs(t, url, true))
	exchange(t, newOurs(t, url, false), newStock(t, url))
}

// TestOurMeshClientWithStockRelay: our relay meshes with the stock derper (same mesh key):
// it watches the stock relay's clients and forwards a packet from its own client to a stock
// client there, which sees the right source key. (The stock relay dials its mesh peers over
// HTTPS only, so the other direction needs TLS and is not covered here.)
func TestOurMeshClientWithStockRelay(t *testing.T) {
	const meshKey = "2222222222222222222222222222222222222222222222222222222222222222"
	pskFile := filepath.Join(t.TempDir(), "mesh.key")
	os.WriteFile(pskFile, []byte(meshKey+"\n"), 0o600)
	stockURL := stockRelay(t, "-mesh-psk-file", pskFile)

	s := derpws.NewServer(key.NewPrivate(), &derpws.ServerOptions{Logf: t.Logf, MeshKey: meshKey})
	mux := http.NewServeMux()
	mux.Handle("/derp", s)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		s.Close()
		hs.Close()
	})
	if err := s.MeshWith(stockURL); err != nil {
		t.Fatal(err)
	}
	x := newOurs(t, hs.URL+"/derp", false)
	y := newStock(t, stockURL)
	got := make(chan key.Public, 1)
	go func() {
		for {
			src, pkt, err := y.recv()
			if err != nil {
				return
			}
			if string(pkt) == "over the mesh" {
				got <- src
				return
			}
		}
	}()
	deadline := time.After(hangGuard)
	for {
		x.send(y.pub(), []byte("over the mesh"))
		select {
		case src := <-got:
			if src != x.pub() {
				t.Fatalf("stock client got the packet from %s, want %s", src.ShortString(), x.pub().ShortString())
			}
			return
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatal("the packet never crossed the mesh to the stock relay")
		}
	}
}

// TestStockMeshClientWithOurRelay: the stock client, acting as a mesh peer with the mesh key,
// watches our relay's clients (PeerPresent) and forwards a packet to one of them, which sees the
// forwarded source key; the same stock client without the mesh key is refused.
func TestStockMeshClientWithOurRelay(t *testing.T) {
	const meshKey = "3333333333333333333333333333333333333333333333333333333333333333"
	s := derpws.NewServer(key.NewPrivate(), &derpws.ServerOptions{Logf: t.Logf, MeshKey: meshKey})
	mux := http.NewServeMux()
	mux.Handle("/derp", s)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		s.Close()
		hs.Close()
	})
	url := hs.URL + "/derp"
	z := newOurs(t, url, true)
	z.c.Start()

	watch := func(mk string) (*derphttp.Client, error) {
		c, err := derphttp.NewClient(stockkey.NewNode(), url, t.Logf, netmon.NewStatic())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if mk != "" {
			if c.MeshKey, err = stockkey.ParseDERPMesh(mk); err != nil {
				t.Fatal(err)
			}
		}
		c.WatchConnectionChanges = true
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		return c, c.Connect(ctx)
	}
	mesh, err := watch(meshKey)
	if err != nil {
		t.Fatal(err)
	}
	for seen := false; !seen; {
		m, err := mesh.Recv()
		if err != nil {
			t.Fatalf("mesh watcher: %v", err)
		}
		if p, ok := m.(stockderp.PeerPresentMessage); ok && toOurs(p.Key) == z.pub() {
			seen = true
		}
	}
	from := stockkey.NewNode().Public()
	if err := mesh.ForwardPacket(from, toStock(z.pub()), []byte("forwarded")); err != nil {
		t.Fatal(err)
	}
	if src, pkt, err := z.recv(); err != nil || src != toOurs(from) || string(pkt) != "forwarded" {
		t.Fatalf("z got %q from %s (%v), want the forwarded source", pkt, src.ShortString(), err)
	}

	// Without the mesh key the watch is refused: the connection ends before any PeerPresent.
	plain, _ := watch("")
	for {
		m, err := plain.Recv()
		if err != nil {
			break
		}
		if _, ok := m.(stockderp.PeerPresentMessage); ok {
			t.Fatal("a client without the mesh key got PeerPresent")
		}
	}
}
