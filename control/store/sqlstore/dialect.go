// Package sqlstore is the SQL shared by the SQLite and PostgreSQL backends of control/store:
// one store.Tx implementation over database/sql and one schema history, rendered per dialect.
package sqlstore

// Dialect is what differs between the SQL databases a backend speaks.
type Dialect struct {
	// Name prefixes the errors of the backend ("sqlitestore", "pgstore").
	Name string
	// Postgres selects PostgreSQL's placeholders ($1) and column types; else SQLite's.
	Postgres bool
	// IsUnique reports whether err is the driver's unique or primary-key violation.
	IsUnique func(err error) bool
}
