package pgstore

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"tsconnect/control/store"
	"tsconnect/internal/testpg"
)

// listened is what a Listener was called with.
type listened struct {
	applied chan []store.Change
	resyncs chan struct{}
}

func listen(t *testing.T, s *Store, origin string) *listened {
	t.Helper()
	l := &listened{applied: make(chan []store.Change, 16), resyncs: make(chan struct{}, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Listen(ctx, store.Listener{Origin: origin, Logf: t.Logf,
			Apply:  func(_ string, c []store.Change) { l.applied <- c },
			Resync: func() { l.resyncs <- struct{}{} }})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return l
}

func (l *listened) wantResync(t *testing.T, why string) {
	t.Helper()
	select {
	case <-l.resyncs:
	case <-time.After(20 * time.Second):
		t.Fatalf("no resync %s", why)
	}
}

func (l *listened) wantApplied(t *testing.T, want []store.Change) {
	t.Helper()
	select {
	case got := <-l.applied:
		if !slices.Equal(got, want) {
			t.Fatalf("applied %v; want %v", got, want)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%v never applied", want)
	}
}

func announce(t *testing.T, s *Store, origin string, changes []store.Change, fail error) {
	t.Helper()
	err := s.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.(store.Announcer).Announce(origin, changes); err != nil {
			return err
		}
		return fail
	})
	if !errors.Is(err, fail) {
		t.Fatal(err)
	}
}

// TestListen: a replica hears the changes another commits, in order, and neither its own
// nor those of a transaction rolled back; a stray notification and a lost connection make
// it resync (after reconnecting), and it hears what comes after.
func TestListen(t *testing.T) {
	url := testpg.Start(t).NewDatabase(t)
	one, two := open(t, url), open(t, url)
	d := pingEvery
	t.Cleanup(func() { pingEvery = d }) // after the listener stopped
	pingEvery = 50 * time.Millisecond
	l := listen(t, one, "one")
	l.wantResync(t, "on the first connection")
	// Idle past many pings, the connection stays: no resync.
	time.Sleep(500 * time.Millisecond)
	select {
	case <-l.resyncs:
		t.Fatal("an idle listener resynced: its pings lost the connection")
	default:
	}

	n5 := []store.Change{{Kind: store.ChangeNode, ID: 5}, {Kind: store.ChangeUser, ID: 2}}
	announce(t, two, "one", []store.Change{{Kind: store.ChangeNode, ID: 99}}, nil) // its own
	announce(t, two, "two", []store.Change{{Kind: store.ChangeNode, ID: 98}}, errors.New("rolled back"))
	announce(t, two, "two", n5, nil)
	announce(t, two, "two", []store.Change{{Kind: store.ChangePolicy}}, nil)
	l.wantApplied(t, n5)
	l.wantApplied(t, []store.Change{{Kind: store.ChangePolicy}})

	if _, err := two.DB().Exec(`SELECT pg_notify($1, 'no origin here')`, store.ChangesChannel); err != nil {
		t.Fatal(err)
	}
	l.wantResync(t, "after a notification it cannot read")

	res, err := two.DB().Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, ListenerName)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("terminated %d listening backends; want 1", n)
	}
	l.wantResync(t, "after its connection was cut")
	announce(t, two, "two", n5, nil)
	l.wantApplied(t, n5)
	select {
	case c := <-l.applied:
		t.Fatalf("applied %v too", c)
	default:
	}
}
