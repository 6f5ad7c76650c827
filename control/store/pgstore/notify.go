package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"tsconnect/control/store"
	"tsconnect/internal/backoff"
)

// pingEvery is how long the listener waits for a notification before it checks, with a
// ping, that its connection still works (a dead peer can otherwise go unnoticed for long).
// A variable for the tests.
var pingEvery = 10 * time.Second

// pingTimeout bounds that ping.
const pingTimeout = 5 * time.Second

// ListenerName is the application_name of the listener's connection (pg_stat_activity).
const ListenerName = "tsconnect-listener"

var _ store.Changes = (*Store)(nil)

// Listen listens on store.ChangesChannel over a connection of its own and passes the
// other replicas' announcements to l.Apply until ctx ends. After each (re)connection it
// calls l.Resync, since announcements made while it was not listening are lost; a lost
// connection is retried with a jittered back-off of up to 5 s.
func (s *Store) Listen(ctx context.Context, l store.Listener) {
	if l.Logf == nil {
		l.Logf = func(string, ...any) {}
	}
	b := backoff.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	for ctx.Err() == nil {
		err := s.listen(ctx, l, b.Reset)
		if ctx.Err() != nil {
			return
		}
		d := b.Next()
		l.Logf("pgstore: listening for other replicas' changes: %v; again in %v", err, d.Round(time.Millisecond))
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
}

// listen runs one connection: it returns why the connection ended. connected is called
// once the connection listens.
func (s *Store) listen(ctx context.Context, l store.Listener, connected func()) error {
	cfg := s.cfg.Copy()
	cfg.RuntimeParams["application_name"] = ListenerName
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	cancel()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{store.ChangesChannel}.Sanitize()); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	connected()
	l.Resync()
	for {
		wctx, cancel := context.WithTimeout(ctx, pingEvery)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			pctx, cancel := context.WithTimeout(ctx, pingTimeout)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("ping: %w", err)
			}
			continue
		case err != nil:
			return err
		}
		origin, changes, err := store.DecodeChanges(n.Payload)
		if err != nil {
			// Only a replica of another version (or a stray NOTIFY) sends one: reload.
			l.Logf("pgstore: %v: reloading everything", err)
			l.Resync()
			continue
		}
		if origin != l.Origin {
			l.Apply(origin, changes)
		}
	}
}
