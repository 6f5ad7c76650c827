package tunstack

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"golang.zx2c4.com/wireguard/tun"
)

// wire moves packets from one Stack's Read to another's Write, using WireGuard's way of
// calling: full batches and a nonzero offset on both sides.
func wire(from, to *Stack, wg *sync.WaitGroup) { wireCut(from, to, wg, nil) }

// wireCut is wire that drops every packet while cut (if non-nil) is set, as a path whose
// relay is down.
func wireCut(from, to *Stack, wg *sync.WaitGroup, cut *atomic.Bool) {
	defer wg.Done()
	const offset = 16
	bufs := make([][]byte, from.BatchSize())
	for i := range bufs {
		bufs[i] = make([]byte, offset+1280)
	}
	sizes := make([]int, len(bufs))
	out := make([][]byte, 0, len(bufs))
	for {
		n, err := from.Read(bufs, sizes, offset)
		if err != nil {
			return
		}
		if cut != nil && cut.Load() {
			continue
		}
		out = out[:0]
		for i := range n {
			out = append(out, bufs[i][:offset+sizes[i]])
		}
		if _, err := to.Write(out, offset); err != nil {
			return
		}
	}
}

func newStack(t *testing.T, addrs ...string) *Stack {
	t.Helper()
	s, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	var ps []netip.Prefix
	for _, a := range addrs {
		ps = append(ps, netip.MustParsePrefix(a))
	}
	if err := s.SetAddresses(ps); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBackToBack connects two Stacks directly, IPv4 and IPv6, through their tun.Device sides.
func TestBackToBack(t *testing.T) {
	a := newStack(t, "100.64.0.1/32", "fd7a::1/128")
	b := newStack(t, "100.64.0.2/32", "fd7a::2/128")
	var wg sync.WaitGroup
	wg.Add(2)
	go wire(a, b, &wg)
	go wire(b, a, &wg)
	defer func() {
		a.Close()
		b.Close()
		wg.Wait()
	}()

	l, err := b.ListenTCP(80)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, c.RemoteAddr().String())
			c.Close()
		}
	}()
	for _, tc := range []struct{ dst, want string }{
		{"100.64.0.2:80", "100.64.0.1:"},
		{"[fd7a::2]:80", "[fd7a::1]:"},
	} {
		c, err := a.DialContext(context.Background(), "tcp", netip.MustParseAddrPort(tc.dst))
		if err != nil {
			t.Fatalf("dial %s: %v", tc.dst, err)
		}
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || len(got) < len(tc.want) || string(got[:len(tc.want)]) != tc.want {
			t.Errorf("dial %s: server saw %q (%v), want %s…", tc.dst, got, err, tc.want)
		}
	}
}

// TestCloseSemantics checks tun.Device's contract around Close.
func TestCloseSemantics(t *testing.T) {
	s := newStack(t, "100.64.0.1/32")
	if ev := <-s.Events(); ev != tun.EventUp {
		t.Fatalf("first event = %v, want EventUp", ev)
	}
	if mtu, err := s.MTU(); err != nil || mtu != DefaultMTU {
		t.Fatalf("MTU = %d, %v", mtu, err)
	}

	readErr := make(chan error)
	go func() {
		bufs, sizes := [][]byte{make([]byte, 1500)}, []int{0}
		_, err := s.Read(bufs, sizes, 0)
		readErr <- err
	}()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-readErr; !errors.Is(err, os.ErrClosed) {
		t.Errorf("blocked Read after Close: err = %v, want os.ErrClosed", err)
	}
	if _, ok := <-s.Events(); ok {
		t.Error("Events channel still open after Close")
	}
	if _, err := s.Read([][]byte{make([]byte, 1500)}, []int{0}, 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read after Close: err = %v", err)
	}
	if _, err := s.Write([][]byte{{0x45}}, 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close: err = %v", err)
	}
	if _, err := s.MTU(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("MTU after Close: err = %v", err)
	}
	if _, err := s.Name(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Name after Close: err = %v", err)
	}
	if err := s.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close: err = %v", err)
	}
	if _, err := s.DialContext(context.Background(), "tcp", netip.MustParseAddrPort("100.64.0.2:22")); err == nil {
		t.Error("Dial after Close succeeded")
	}
}

func TestBadOptions(t *testing.T) {
	if _, err := New(&Options{MTU: 1000}); err == nil {
		t.Error("New accepted MTU 1000")
	}
	s := newStack(t)
	defer s.Close()
	for _, p := range []string{"100.64.0.0/10", "::ffff:100.64.0.1/128"} {
		if err := s.SetAddresses([]netip.Prefix{netip.MustParsePrefix(p)}); err == nil {
			t.Errorf("SetAddresses accepted %s", p)
		}
	}
}
