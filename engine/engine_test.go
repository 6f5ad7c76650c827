package engine

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"tsconnect/internal/leakcheck"

	"tsconnect/derpbind"
	"tsconnect/derpbind/memrelay"
	"tsconnect/key"
)

// node is one engine on a memrelay hub, with its overlay addresses.
type node struct {
	*Engine
	hub    *memrelay.Hub
	relay  *memrelay.Client
	v4, v6 netip.Addr
}

func (n *node) peer() Peer {
	return Peer{Key: n.PublicKey(), AllowedIPs: []netip.Prefix{netip.PrefixFrom(n.v4, 32), netip.PrefixFrom(n.v6, 128)}}
}

func newNode(t testing.TB, hub *memrelay.Hub, i int) *node {
	t.Helper()
	priv := key.NewPrivate()
	relay := hub.Client(priv.Public())
	e, err := New(Config{PrivateKey: priv, Bind: derpbind.New(relay, t.Logf), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{
		Engine: e,
		hub:    hub,
		relay:  relay,
		v4:     netip.AddrFrom4([4]byte{100, 64, 0, byte(i)}),
		v6:     netip.MustParseAddr(fmt.Sprintf("fd7a:115c:a1e0::%x", i)),
	}
	if err := e.SetAddresses([]netip.Prefix{netip.PrefixFrom(n.v4, 32), netip.PrefixFrom(n.v6, 128)}); err != nil {
		t.Fatal(err)
	}
	return n
}

func (n *node) close() {
	n.Close()
	n.relay.Close()
}

// pair returns two engines that know each other as peers. They are closed when t ends.
func pair(t testing.TB) (a, b *node) {
	t.Helper()
	return pairOn(t, &memrelay.Hub{})
}

// pairOn is pair on the given hub.
func pairOn(t testing.TB, hub *memrelay.Hub) (a, b *node) {
	t.Helper()
	a, b = newNode(t, hub, 1), newNode(t, hub, 2)
	t.Cleanup(a.close)
	t.Cleanup(b.close)
	mustSetPeers(t, a, b.peer())
	mustSetPeers(t, b, a.peer())
	return a, b
}

func mustSetPeers(t testing.TB, n *node, peers ...Peer) {
	t.Helper()
	if err := n.SetPeers(peers); err != nil {
		t.Fatal(err)
	}
}

// echoServer accepts connections on l and echoes each line back, prefixed with the
// client's address as the server saw it.
func echoServer(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 1024)
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s %s", c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr(), buf[:n])
		}()
	}
}

// roundTrip dials addr from n, sends msg and returns the echo.
func roundTrip(ctx context.Context, n *node, network string, addr netip.AddrPort, msg string) (string, error) {
	c, err := n.DialContext(ctx, network, addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	got, err := io.ReadAll(c)
	return string(got), err
}

func TestDialListenIPv4IPv6(t *testing.T) {
	leakcheck.Check(t)
	func() {
		a, b := pair(t)
		l, err := b.ListenTCP(22)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go echoServer(l)

		ctx := context.Background()
		for _, tc := range []struct {
			network string
			dst     netip.Addr
			src     netip.Addr
		}{
			{"tcp", b.v4, a.v4},
			{"tcp4", b.v4, a.v4},
			{"tcp", b.v6, a.v6},
			{"tcp6", b.v6, a.v6},
		} {
			got, err := roundTrip(ctx, a, tc.network, netip.AddrPortFrom(tc.dst, 22), "hello")
			if err != nil {
				t.Fatalf("%s to %v: %v", tc.network, tc.dst, err)
			}
			// The server must see the client's own overlay address, unmapped: it names the node.
			if want := tc.src.String() + " hello"; got != want {
				t.Errorf("%s to %v: got %q, want %q", tc.network, tc.dst, got, want)
			}
		}

		if _, err := a.DialContext(ctx, "tcp6", netip.AddrPortFrom(b.v4, 22)); err == nil {
			t.Error("tcp6 dial to an IPv4 address succeeded")
		}
		if _, err := a.DialContext(ctx, "udp", netip.AddrPortFrom(b.v4, 22)); err == nil || !strings.Contains(err.Error(), "unsupported network") {
			t.Errorf("udp dial: err = %v, want unsupported network", err)
		}
		unknown := netip.AddrPortFrom(netip.MustParseAddr("100.64.0.99"), 22)
		if _, err := a.DialContext(ctx, "tcp", unknown); err == nil || !strings.Contains(err.Error(), "no peer") {
			t.Errorf("dial to an address no peer owns: err = %v, want no peer", err)
		}
		closedPort := netip.AddrPortFrom(b.v4, 23)
		if _, err := a.DialContext(ctx, "tcp", closedPort); err == nil {
			t.Error("dial to a port nobody listens on succeeded")
		}

		a.close()
		b.close()
		if err := a.Close(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("second Close: err = %v, want net.ErrClosed", err)
		}
		if _, err := a.DialContext(ctx, "tcp", netip.AddrPortFrom(b.v4, 22)); err == nil {
			t.Error("dial on a closed engine succeeded")
		}
		if _, err := l.Accept(); err == nil {
			t.Error("Accept on a closed engine's listener succeeded")
		}
	}()
}

const bulkSize int64 = 32 << 20

// TestBulkTransfer moves 32 MiB of random bytes each way at once over one connection and
// checks them by SHA-256. Under GOOS=js it is the livelock guard of docs/architecture.md: the whole
// data path (two stacks, two WireGuard devices, the relay) in one single-threaded process.
func TestBulkTransfer(t *testing.T) {
	bulkTransfer(t, &memrelay.Hub{}, bulkSize)
}

// TestBulkTransferLossyRelay is TestBulkTransfer through a relay whose short queues drop
// packets, so TCP's loss recovery and retransmit timers are part of the path.
func TestBulkTransferLossyRelay(t *testing.T) {
	hub := &memrelay.Hub{QueueLen: 32}
	bulkTransfer(t, hub, 8<<20)
	if hub.Dropped() == 0 {
		t.Log("the relay dropped nothing: loss recovery was not exercised")
	}
}

func bulkTransfer(t *testing.T, hub *memrelay.Hub, size int64) {
	a, b := pairOn(t, hub)
	l, err := b.ListenTCP(22)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			t.Error(err)
			close(accepted)
			return
		}
		accepted <- c
	}()
	ca, err := a.DialContext(context.Background(), "tcp", netip.AddrPortFrom(b.v6, 22))
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	cb := <-accepted
	if cb == nil {
		t.FailNow()
	}
	defer cb.Close()

	start := time.Now()
	var wg sync.WaitGroup
	results := make([]transfer, 2)
	for i, ends := range [][2]net.Conn{{ca, cb}, {cb, ca}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = send(ends[0], ends[1], size)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("direction %d: %v", i, r.err)
		}
		if r.got != size || r.sentSum != r.gotSum {
			t.Fatalf("direction %d: sent %d bytes (sha256 %x), received %d (sha256 %x)", i, size, r.sentSum, r.got, r.gotSum)
		}
	}
	t.Logf("%s/%s: 2 × %d MiB in %v: %.1f MiB/s each way, %.1f MiB/s total; relay dropped %d packets",
		runtime.GOOS, runtime.GOARCH, size>>20, elapsed.Round(time.Millisecond),
		float64(size>>20)/elapsed.Seconds(), float64(2*size>>20)/elapsed.Seconds(), hub.Dropped())
}

type transfer struct {
	got             int64
	sentSum, gotSum [32]byte
	err             error
}

// send writes n random bytes to w, half-closes it, and reads them at r until EOF.
func send(w, r net.Conn, n int64) transfer {
	var res transfer
	errc := make(chan error, 1)
	go func() {
		h := sha256.New()
		src := io.TeeReader(io.LimitReader(newRandReader(), n), h)
		_, err := io.CopyBuffer(w, src, make([]byte, 64<<10))
		copy(res.sentSum[:], h.Sum(nil))
		if err == nil {
			err = w.(interface{ CloseWrite() error }).CloseWrite()
		}
		errc <- err
	}()
	h := sha256.New()
	got, err := io.CopyBuffer(h, r, make([]byte, 64<<10))
	res.got = got
	copy(res.gotSum[:], h.Sum(nil))
	if werr := <-errc; werr != nil {
		err = fmt.Errorf("write: %w", werr)
	} else if err != nil {
		err = fmt.Errorf("read: %w", err)
	}
	res.err = err
	return res
}

// newRandReader returns a fast stream of random bytes (ChaCha8, seeded from crypto/rand).
func newRandReader() io.Reader {
	var seed [32]byte
	crand.Read(seed[:])
	return rand.NewChaCha8(seed)
}

func TestPeerRemoveAndReAdd(t *testing.T) {
	a, b := pair(t)
	la, err := a.ListenTCP(22)
	if err != nil {
		t.Fatal(err)
	}
	defer la.Close()
	go echoServer(la)
	lb, err := b.ListenTCP(22)
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	go echoServer(lb)

	ctx := context.Background()
	if _, err := roundTrip(ctx, a, "tcp", netip.AddrPortFrom(b.v4, 22), "x"); err != nil {
		t.Fatal(err)
	}

	// a forgets b. a's own dials fail at once; b still has a session key with a, but a
	// drops everything b sends, so b's dial never completes.
	mustSetPeers(t, a)
	if _, err := a.DialContext(ctx, "tcp", netip.AddrPortFrom(b.v4, 22)); err == nil || !strings.Contains(err.Error(), "no peer") {
		t.Errorf("dial to a removed peer: err = %v, want no peer", err)
	}
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := roundTrip(short, b, "tcp", netip.AddrPortFrom(a.v4, 22), "x"); err == nil {
		t.Error("a peer that was removed could still connect")
	}

	mustSetPeers(t, a, b.peer())
	for _, dir := range []struct {
		from *node
		to   netip.Addr
	}{{a, b.v4}, {b, a.v6}} {
		if got, err := roundTrip(ctx, dir.from, "tcp", netip.AddrPortFrom(dir.to, 22), "back"); err != nil || !strings.HasSuffix(got, " back") {
			t.Errorf("after re-adding the peer, dial %v: got %q, %v", dir.to, got, err)
		}
	}
}

func TestSetPeersKeepsSessions(t *testing.T) {
	a, b := pair(t)
	l, err := b.ListenTCP(2222)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c)
		c.Close()
	}()
	c, err := a.DialContext(context.Background(), "tcp", netip.AddrPortFrom(b.v4, 2222))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echo := func(msg string) {
		t.Helper()
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
			t.Fatalf("echo: got %q, %v; want %q", buf, err, msg)
		}
	}
	echo("before")
	hs := a.handshake(t, b.PublicKey())

	// The same peers again, then with a new peer added and b's address list extended:
	// the connection carries on, and the session was never renegotiated.
	other := key.NewPrivate().Public()
	otherPeer := Peer{Key: other, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("100.64.0.3/32")}}
	mustSetPeers(t, a, b.peer())
	echo("same")
	mustSetPeers(t, a, b.peer(), otherPeer)
	echo("added")
	more := b.peer()
	more.AllowedIPs = append(more.AllowedIPs, netip.MustParsePrefix("100.64.0.22/32"))
	mustSetPeers(t, a, otherPeer, more)
	echo("changed")
	if got := a.handshake(t, b.PublicKey()); got != hs {
		t.Errorf("peer's session was restarted: handshake %q, then %q", hs, got)
	}

	if err := a.SetPeers([]Peer{b.peer(), b.peer()}); err == nil {
		t.Error("SetPeers with a duplicate key succeeded")
	}
	if err := a.SetPeers([]Peer{{Key: a.PublicKey()}}); err == nil {
		t.Error("SetPeers with the node's own key succeeded")
	}
	echo("still")
}

// handshake returns the time of n's last handshake with peer, from WireGuard's UAPI.
func (n *node) handshake(t *testing.T, peer key.Public) string {
	t.Helper()
	cfg, err := n.dev.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	var cur, sec, nsec string
	for _, line := range strings.Split(cfg, "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "public_key":
			cur = v
		case "last_handshake_time_sec":
			if cur == peer.String() {
				sec = v
			}
		case "last_handshake_time_nsec":
			if cur == peer.String() {
				nsec = v
			}
		}
	}
	if sec == "" || sec == "0" {
		t.Fatalf("no handshake with %s", peer.ShortString())
	}
	return sec + "." + nsec
}

func TestSetAddressesLive(t *testing.T) {
	a, b := pair(t)
	l, err := b.ListenTCP(22)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go echoServer(l)

	moved := netip.MustParseAddr("100.64.0.42")
	if err := b.SetAddresses([]netip.Prefix{netip.PrefixFrom(moved, 32), netip.PrefixFrom(b.v6, 128)}); err != nil {
		t.Fatal(err)
	}
	p := b.peer()
	p.AllowedIPs = []netip.Prefix{netip.PrefixFrom(moved, 32), netip.PrefixFrom(b.v6, 128)}
	mustSetPeers(t, a, p)
	if got, err := roundTrip(context.Background(), a, "tcp4", netip.AddrPortFrom(moved, 22), "moved"); err != nil || !strings.HasSuffix(got, " moved") {
		t.Errorf("dial to the new address: %q, %v", got, err)
	}
	if err := b.SetAddresses([]netip.Prefix{netip.MustParsePrefix("100.64.0.0/10")}); err == nil {
		t.Error("SetAddresses took a subnet")
	}
	if got := b.Addresses(); len(got) != 2 || got[0].Addr() != moved {
		t.Errorf("Addresses after a refused change = %v", got)
	}
}

func TestNewErrors(t *testing.T) {
	hub := &memrelay.Hub{}
	priv := key.NewPrivate()
	bind := derpbind.New(hub.Client(priv.Public()), nil)
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Bind: bind}, "PrivateKey"},
		{Config{PrivateKey: priv}, "Bind"},
		{Config{PrivateKey: priv, Bind: bind, MTU: 500}, "MTU"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v): err = %v, want mention of %s", tc.cfg.MTU, err, tc.want)
		}
	}
}
