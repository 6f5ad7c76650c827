package derpbind_test

import (
	"errors"
	"net"
	"strings"
	"testing"

	"golang.zx2c4.com/wireguard/conn"

	"tsconnect/derpbind"
	"tsconnect/derpbind/memrelay"
	"tsconnect/key"
)

type side struct {
	key   key.Public
	relay *memrelay.Client
	bind  *derpbind.Bind
}

func newSide(t *testing.T, hub *memrelay.Hub) *side {
	k := key.NewPrivate().Public()
	r := hub.Client(k)
	t.Cleanup(func() { r.Close() })
	return &side{key: k, relay: r, bind: derpbind.New(r, t.Logf)}
}

func open(t *testing.T, b *derpbind.Bind) conn.ReceiveFunc {
	t.Helper()
	fns, _, err := b.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(fns) != 1 {
		t.Fatalf("Open returned %d receive funcs, want 1", len(fns))
	}
	return fns[0]
}

// recv calls fn with a full batch of buffers.
func recv(fn conn.ReceiveFunc, batch int) ([][]byte, []conn.Endpoint, error) {
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, 1500)
	}
	sizes := make([]int, batch)
	eps := make([]conn.Endpoint, batch)
	n, err := fn(bufs, sizes, eps)
	for i := range n {
		bufs[i] = bufs[i][:sizes[i]]
	}
	return bufs[:n], eps[:n], err
}

func TestSendReceiveByKey(t *testing.T) {
	hub := &memrelay.Hub{}
	a, b := newSide(t, hub), newSide(t, hub)
	open(t, a.bind)
	fn := open(t, b.bind)

	ep, err := a.bind.ParseEndpoint(b.key.String())
	if err != nil {
		t.Fatal(err)
	}
	if ep.DstToString() != b.key.String() {
		t.Errorf("DstToString = %q, want the key %q", ep.DstToString(), b.key)
	}
	msgs := [][]byte{[]byte("one"), []byte("two"), []byte("three")}
	if err := a.bind.Send(msgs, ep); err != nil {
		t.Fatal(err)
	}
	// The caller may reuse its buffers once Send returns.
	copy(msgs[0], "XXX")

	var got []string
	for len(got) < 3 {
		pkts, eps, err := recv(fn, b.bind.BatchSize())
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range pkts {
			got = append(got, string(p))
			if eps[i].DstToString() != a.key.String() {
				t.Errorf("packet %q from %s, want sender %s", p, eps[i].DstToString(), a.key)
			}
		}
	}
	if strings.Join(got, ",") != "one,two,three" {
		t.Errorf("received %q", got)
	}
}

func TestParseEndpointErrors(t *testing.T) {
	b := derpbind.New(nil, nil)
	for _, s := range []string{"", "127.0.0.1:41641", strings.Repeat("g", 64)} {
		if _, err := b.ParseEndpoint(s); err == nil || !strings.Contains(err.Error(), "public key") {
			t.Errorf("ParseEndpoint(%q): err = %v", s, err)
		}
	}
	if err := b.Send([][]byte{{1}}, nil); !errors.Is(err, conn.ErrWrongEndpointType) {
		t.Errorf("Send to a foreign endpoint: err = %v", err)
	}
	if err := b.SetMark(7); err != nil {
		t.Errorf("SetMark: %v", err)
	}
}

// TestCloseOpenCycles checks conn.Bind's contract: Close unblocks receive funcs with
// net.ErrClosed, Send fails while closed, and Open works again on the same Relay.
func TestCloseOpenCycles(t *testing.T) {
	hub := &memrelay.Hub{}
	a, b := newSide(t, hub), newSide(t, hub)
	toB := derpbind.NewEndpoint(b.key)
	open(t, a.bind)
	for cycle := range 3 {
		fn := open(t, b.bind)
		if _, _, err := b.bind.Open(0); !errors.Is(err, conn.ErrBindAlreadyOpen) {
			t.Fatalf("cycle %d: second Open: err = %v", cycle, err)
		}
		if err := a.bind.Send([][]byte{{byte(cycle)}}, toB); err != nil {
			t.Fatal(err)
		}
		pkts, _, err := recv(fn, 1)
		if err != nil || len(pkts) != 1 || pkts[0][0] != byte(cycle) {
			t.Fatalf("cycle %d: got %v, %v", cycle, pkts, err)
		}

		blocked := make(chan error)
		go func() {
			_, _, err := recv(fn, 1)
			blocked <- err
		}()
		if err := b.bind.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-blocked; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("cycle %d: blocked receive after Close: err = %v, want net.ErrClosed", cycle, err)
		}
		if _, _, err := recv(fn, 1); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("cycle %d: receive after Close: err = %v", cycle, err)
		}
		if err := b.bind.Send([][]byte{{1}}, derpbind.NewEndpoint(a.key)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("cycle %d: Send on closed Bind: err = %v", cycle, err)
		}
		if err := b.bind.Close(); err != nil {
			t.Fatalf("cycle %d: second Close: %v", cycle, err)
		}
	}
}

// TestRelayClosed checks that closing the Relay ends delivery with net.ErrClosed and that
// the Bind cannot be reopened on it.
func TestRelayClosed(t *testing.T) {
	hub := &memrelay.Hub{}
	b := newSide(t, hub)
	fn := open(t, b.bind)
	b.relay.Close()
	if _, _, err := recv(fn, 1); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("receive after relay Close: err = %v", err)
	}
	b.bind.Close()
	if _, _, err := b.bind.Open(0); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Open on a closed relay: err = %v", err)
	}
}
