package sqlitestore

import (
	"path/filepath"
	"testing"
)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSchemaAndPragmas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	s := open(t, path)
	s.Close()
	s = open(t, path) // migrating again is a no-op
	defer s.Close()
	var v int
	var mode string
	var fk, busy int
	if err := s.w.QueryRow(`SELECT version FROM schema_version`).Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("schema version %d (%v), want %d", v, err, len(migrations))
	}
	s.w.QueryRow(`PRAGMA journal_mode`).Scan(&mode)
	s.w.QueryRow(`PRAGMA foreign_keys`).Scan(&fk)
	s.w.QueryRow(`PRAGMA busy_timeout`).Scan(&busy)
	if mode != "wal" || fk != 1 || busy == 0 {
		t.Fatalf("journal_mode=%s foreign_keys=%d busy_timeout=%d", mode, fk, busy)
	}
	var rows int
	s.w.QueryRow(`SELECT count(*) FROM schema_version`).Scan(&rows)
	if rows != 1 {
		t.Fatalf("%d schema_version rows", rows)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	s := open(t, path)
	s.w.Exec(`UPDATE schema_version SET version = 999`)
	s.Close()
	if _, err := Open(path); err == nil {
		t.Fatal("opened a database from the future")
	}
}
