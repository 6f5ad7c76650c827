// Package storecopy moves a network from SQLite to PostgreSQL: every row of every table,
// copied in one transaction and verified row by row before it commits.
package storecopy

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"tsconnect/control/store/sqlstore"
)

// Copy copies every row of the SQLite database src into the empty PostgreSQL database dst
// (both at the newest schema: open them with sqlitestore and pgstore), keeping every ID. It
// reads src in one transaction and writes dst in one, and commits only when each table of
// dst holds exactly the rows of src's. It returns the rows copied, by table.
func Copy(ctx context.Context, src, dst *sql.DB) (map[string]int, error) {
	stx, err := src.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("storecopy: source: %w", err)
	}
	defer stx.Rollback()
	dtx, err := dst.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable})
	if err != nil {
		return nil, fmt.Errorf("storecopy: destination: %w", err)
	}
	defer dtx.Rollback()
	for _, table := range sqlstore.Tables {
		var n int
		if err := dtx.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			return nil, fmt.Errorf("storecopy: destination: %w", err)
		}
		if n > 0 {
			return nil, fmt.Errorf("storecopy: the destination holds a network already (%d rows in %s): it must be empty", n, table)
		}
	}
	counts := map[string]int{}
	for _, table := range sqlstore.Tables {
		n, err := copyTable(ctx, stx, dtx, table)
		if err != nil {
			return nil, fmt.Errorf("storecopy: %s: %w", table, err)
		}
		counts[table] = n
	}
	for _, table := range sqlstore.Tables {
		if err := verify(ctx, stx, dtx, table); err != nil {
			return nil, fmt.Errorf("storecopy: verify %s: %w", table, err)
		}
	}
	if err := dtx.Commit(); err != nil {
		return nil, fmt.Errorf("storecopy: commit: %w", err)
	}
	return counts, nil
}

// copyTable inserts every row of table from src into dst and moves dst's identity sequence
// past the copied IDs.
func copyTable(ctx context.Context, src, dst *sql.Tx, table string) (int, error) {
	bools, err := boolColumns(ctx, dst, table)
	if err != nil {
		return 0, err
	}
	rows, err := src.QueryContext(ctx, `SELECT * FROM `+table)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	marks := make([]string, len(cols))
	for i := range cols {
		marks[i] = fmt.Sprintf("$%d", i+1)
	}
	insert := `INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `) VALUES (` + strings.Join(marks, ", ") + `)`
	n := 0
	hasID := false
	for rows.Next() {
		vals, err := scanRow(rows, len(cols))
		if err != nil {
			return n, err
		}
		for i, c := range cols {
			hasID = hasID || c == "id"
			if v, ok := vals[i].(int64); ok && bools[c] {
				vals[i] = v != 0
			}
		}
		if _, err := dst.ExecContext(ctx, insert, vals...); err != nil {
			return n, fmt.Errorf("row %d: %w", n+1, err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, err
	}
	if hasID && n > 0 {
		if _, err := dst.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('`+table+`', 'id'), (SELECT max(id) FROM `+table+`))`); err != nil {
			return n, fmt.Errorf("identity sequence: %w", err)
		}
	}
	return n, nil
}

// boolColumns returns the BOOLEAN columns of table in PostgreSQL (SQLite keeps them as 0 and 1).
func boolColumns(ctx context.Context, tx *sql.Tx, table string) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1 AND data_type = 'boolean'`, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		out[c] = true
	}
	return out, rows.Err()
}

func scanRow(rows *sql.Rows, n int) ([]any, error) {
	vals := make([]any, n)
	ptrs := make([]any, n)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	return vals, rows.Scan(ptrs...)
}

// verify checks that table holds the same rows in src and dst, as multisets of values
// compared column by column (booleans as 0 and 1, text and bytes by their bytes).
func verify(ctx context.Context, src, dst *sql.Tx, table string) error {
	a, err := rowSet(ctx, src, table)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	b, err := rowSet(ctx, dst, table)
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	for row, n := range a {
		if b[row] != n {
			return fmt.Errorf("row %s: %d in the source, %d in the destination", row, n, b[row])
		}
	}
	if len(a) != len(b) {
		return fmt.Errorf("%d distinct rows in the source, %d in the destination", len(a), len(b))
	}
	return nil
}

func rowSet(ctx context.Context, tx *sql.Tx, table string) (map[string]int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT * FROM `+table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for rows.Next() {
		vals, err := scanRow(rows, len(cols))
		if err != nil {
			return nil, err
		}
		fields := make([]string, len(vals))
		for i, v := range vals {
			switch x := v.(type) {
			case bool:
				v = map[bool]int64{false: 0, true: 1}[x]
			case []byte:
				v = string(x)
			}
			fields[i] = fmt.Sprintf("%s=%q", cols[i], fmt.Sprint(v))
		}
		slices.Sort(fields) // by column name: the order of columns does not matter
		out[strings.Join(fields, " ")]++
	}
	return out, rows.Err()
}
