// Package pgstore is the PostgreSQL backend of control/store (pgx v5): SERIALIZABLE updates retried
// on serialization failures, migrations once under an advisory lock, replicas' announcements via LISTEN.
package pgstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"tsconnect/control/store"
	"tsconnect/control/store/sqlstore"
	"tsconnect/internal/backoff"
)

// SQLSTATE codes the store acts on.
const (
	codeUnique        = "23505"
	codeSerialization = "40001"
	codeDeadlock      = "40P01"
)

// MaxAttempts bounds how many times Update runs a transaction that keeps failing to
// serialize before it returns the failure.
const MaxAttempts = 10

// migrateLock is the advisory lock key under which replicas migrate the schema one at a time.
const migrateLock = 0x7473636f6e6e // "tsconn"

// dialect is PostgreSQL's SQL for the shared store code.
var dialect = &sqlstore.Dialect{Name: "pgstore", Postgres: true, IsUnique: func(err error) bool {
	return sqlState(err) == codeUnique
}}

// Store is a store.Store backed by a PostgreSQL database.
type Store struct {
	db      *sql.DB
	cfg     *pgx.ConnConfig // for the listener's own connection (notify.go)
	retries atomic.Int64    // transactions run again after a serialization failure or deadlock
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at url (postgres://…) and migrates its schema. Replicas
// opening one empty database together migrate it once: each waits on an advisory lock.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err) // pgx leaves any password out of its errors
	}
	if _, set := cfg.RuntimeParams["plan_cache_mode"]; !set {
		// pgx prepares and caches every statement; PostgreSQL would switch a cached statement
		// to a generic plan after five runs, and one chosen while a table was small scans it
		// whole ever after (a lookup by a partial index turned into 0.4 ms at 3,000 nodes).
		cfg.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("pgstore: %s: %w", cfg.Database, err)
	}
	return &Store{db: db, cfg: cfg}, nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrateLock); err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	defer conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, migrateLock)
	return dialect.Migrate(ctx, conn)
}

// DB returns the connection pool, for copying a database into it (control/store/storecopy).
func (s *Store) DB() *sql.DB { return s.db }

// Retries returns how many times Update has met a serialization failure or deadlock since
// Open: the cost of transactions racing on the same rows.
func (s *Store) Retries() int64 { return s.retries.Load() }

// Close closes the connection pool.
func (s *Store) Close() error { return s.db.Close() }

// Read runs fn in a read-only transaction on one snapshot (REPEATABLE READ, READ ONLY).
func (s *Store) Read(ctx context.Context, fn func(store.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("pgstore: begin: %w", err)
	}
	defer tx.Rollback()
	return fn(sqlstore.NewTx(ctx, tx, dialect, nil))
}

// Update runs fn in a SERIALIZABLE transaction and commits it when fn returns nil. A
// serialization failure or deadlock, from fn's statements or the commit, rolls back and
// runs fn again after a jittered back-off, up to MaxAttempts times.
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	b := backoff.Backoff{Min: 2 * time.Millisecond, Max: 250 * time.Millisecond}
	for attempt := 1; ; attempt++ {
		err := s.update(ctx, fn)
		if retryable(err) {
			s.retries.Add(1)
		}
		if !retryable(err) || attempt == MaxAttempts {
			if retryable(err) {
				return fmt.Errorf("pgstore: transaction failed to serialize %d times: %w", attempt, err)
			}
			return err
		}
		select {
		case <-time.After(b.Next()):
		case <-ctx.Done():
			return fmt.Errorf("pgstore: retrying a transaction: %w", context.Cause(ctx))
		}
	}
}

func (s *Store) update(ctx context.Context, fn func(store.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable})
	if err != nil {
		return fmt.Errorf("pgstore: begin: %w", err)
	}
	if err := fn(sqlstore.NewTx(ctx, tx, dialect, nil)); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("pgstore: commit: %w", err)
	}
	return nil
}

// retryable reports whether err is a serialization failure or deadlock: the transaction
// lost a race and running it again may succeed.
func retryable(err error) bool {
	c := sqlState(err)
	return c == codeSerialization || c == codeDeadlock
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
