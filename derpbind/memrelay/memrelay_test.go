package memrelay

import (
	"errors"
	"net"
	"testing"

	"tsconnect/key"
)

func TestRoutesByKeyAndDropsOldest(t *testing.T) {
	hub := &Hub{QueueLen: 2}
	ka, kb := key.NewPrivate().Public(), key.NewPrivate().Public()
	a, b := hub.Client(ka), hub.Client(kb)
	defer a.Close()
	defer b.Close()

	for _, s := range []string{"1", "2", "3"} {
		if err := a.Send(kb, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Send(key.NewPrivate().Public(), []byte("nobody")); err != nil {
		t.Fatalf("Send to an absent key: %v", err)
	}
	for _, want := range []string{"2", "3"} {
		src, pkt, err := b.Recv()
		if err != nil || src != ka || string(pkt) != want {
			t.Fatalf("Recv = %s %q %v, want %s %q", src.ShortString(), pkt, err, ka.ShortString(), want)
		}
	}
	if d := hub.Dropped(); d != 2 {
		t.Errorf("Dropped = %d, want 2 (one oldest, one to an absent key)", d)
	}
}

func TestCloseAndReplace(t *testing.T) {
	hub := &Hub{}
	k := key.NewPrivate().Public()
	old := hub.Client(k)
	done := make(chan error)
	go func() {
		_, _, err := old.Recv()
		done <- err
	}()
	cur := hub.Client(k) // a newer connection for the same key wins
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("replaced client's Recv: err = %v, want net.ErrClosed", err)
	}
	if err := old.Send(k, []byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Send on replaced client: err = %v", err)
	}
	if err := cur.Send(k, []byte("self")); err != nil {
		t.Fatal(err)
	}
	if _, pkt, err := cur.Recv(); err != nil || string(pkt) != "self" {
		t.Fatalf("new client Recv = %q, %v", pkt, err)
	}
	cur.Close()
	if _, _, err := cur.Recv(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Recv after Close: err = %v", err)
	}
}
