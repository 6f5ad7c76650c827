package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
)

// BackupTo writes a consistent copy of the database, as of one moment, to path (VACUUM INTO
// in a read transaction of its own connection: writers go on meanwhile). path must not
// exist; it is created mode 0600, since the database holds the server's private keys.
func (s *Store) BackupTo(ctx context.Context, path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("sqlitestore: backup: %w", err)
	}
	f.Close()
	// Not the readers' pool: they are query_only, which refuses VACUUM INTO.
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	db, err := sql.Open("sqlite", "file:"+s.path+"?"+q.Encode())
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("sqlitestore: backup: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		os.Remove(path)
		return fmt.Errorf("sqlitestore: backup: %w", err)
	}
	return nil
}

// CheckBackup opens the database file at path read-only and tells whether it is a whole,
// intact tsconnect database this program can open: SQLite's integrity check passes, and its
// schema version is one this program knows. It returns that version.
func CheckBackup(ctx context.Context, path string) (version int, err error) {
	if _, err := os.Stat(path); err != nil {
		return 0, err
	}
	q := url.Values{}
	q.Add("mode", "ro")
	q.Add("_pragma", "query_only(1)")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var ok string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&ok); err != nil {
		return 0, fmt.Errorf("%s is not a SQLite database: %w", path, err)
	}
	if ok != "ok" {
		return 0, fmt.Errorf("%s is damaged: %s", path, ok)
	}
	if err := db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&version); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			err = errors.New("no schema version")
		}
		return 0, fmt.Errorf("%s is not a tsconnect control database: %w", path, err)
	}
	if version < 1 || version > len(migrations) {
		return version, fmt.Errorf("%s has schema version %d; this program knows 1 to %d", path, version, len(migrations))
	}
	return version, nil
}
