// Package sqlitestore is the SQLite backend of control/store: one file, WAL journal,
// one writer connection and a pool of readers, schema migrations kept in a version table.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"

	"modernc.org/sqlite" // pure-Go SQLite driver, registered as "sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"tsconnect/control/store"
	"tsconnect/control/store/sqlstore"
)

// dialect is SQLite's SQL for the shared store code.
var dialect = &sqlstore.Dialect{Name: "sqlitestore", IsUnique: func(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}}

// migrations is the schema history in SQLite's SQL.
var migrations = dialect.Migrations()

// Store is a store.Store backed by one SQLite file.
type Store struct {
	w    *sql.DB // one connection, BEGIN IMMEDIATE: writers never race for the lock
	r    *sql.DB // readers, BEGIN DEFERRED, read-only
	ws   *sqlstore.Stmts
	rs   *sqlstore.Stmts
	path string
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path and migrates its schema.
//
// Durability: WAL with synchronous=NORMAL, so a committed transaction survives the process
// being killed at any moment (kill -9); only a power loss may drop the last commits.
func Open(path string) (*Store, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	wq := url.Values{}
	for k, v := range q {
		wq[k] = v
	}
	wq.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", "file:"+path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := migrate(w); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlitestore: %s: %w", path, err)
	}
	q.Add("_pragma", "query_only(1)")
	r, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	n := max(runtime.GOMAXPROCS(0), 2)
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	return &Store{w: w, r: r, ws: sqlstore.NewStmts(w), rs: sqlstore.NewStmts(r), path: path}, nil
}

// DB returns the pool of read-only connections, for copying the database elsewhere
// (control/store/storecopy).
func (s *Store) DB() *sql.DB { return s.r }

// Close closes the database.
func (s *Store) Close() error {
	return errors.Join(s.rs.Close(), s.ws.Close(), s.r.Close(), s.w.Close())
}

// Read runs fn in a read-only transaction.
func (s *Store) Read(ctx context.Context, fn func(store.Tx) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("sqlitestore: begin: %w", err)
	}
	defer s.rs.Ended()
	defer tx.Rollback()
	return fn(sqlstore.NewTx(ctx, tx, dialect, s.rs))
}

// Update runs fn in a read-write transaction and commits it when fn returns nil.
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlitestore: begin: %w", err)
	}
	defer s.ws.Ended()
	if err := fn(sqlstore.NewTx(ctx, tx, dialect, s.ws)); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlitestore: commit: %w", err)
	}
	return nil
}

// migrate brings the schema of the writer's database up to date.
func migrate(w *sql.DB) error {
	ctx := context.Background()
	conn, err := w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return dialect.Migrate(ctx, conn)
}
