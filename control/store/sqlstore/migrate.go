package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Migrate brings the schema on conn up to date, one transaction per step, keeping the
// version in the table schema_version. It refuses a database newer than this program.
// Backends serialize concurrent migrations themselves (SQLite: one writer; PostgreSQL: an
// advisory lock held on conn).
func (d *Dialect) Migrate(ctx context.Context, conn *sql.Conn) error {
	migrations := d.Migrations()
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	for {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate: begin: %w", err)
		}
		var v int
		err = tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			_, err = tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`)
		}
		if err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate: read version: %w", err)
		}
		if v > len(migrations) {
			tx.Rollback()
			return fmt.Errorf("database schema version %d is newer than this program knows (%d): upgrade the program", v, len(migrations))
		}
		if v == len(migrations) {
			return tx.Commit()
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to version %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = `+fmt.Sprint(v+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to version %d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate to version %d: commit: %w", v+1, err)
		}
	}
}
