package sqlstore

import (
	"tsconnect/control/store"
)

var _ store.Announcer = (*txn)(nil)

// Announce queues a notification of changes on store.ChangesChannel, which PostgreSQL
// delivers to the listening replicas when the transaction commits. On SQLite, which one
// process owns, there is nobody to tell and it does nothing.
func (t *txn) Announce(origin string, changes []store.Change) error {
	if !t.d.Postgres || len(changes) == 0 {
		return nil
	}
	_, err := t.tx.ExecContext(t.ctx, `SELECT pg_notify($1, $2)`, store.ChangesChannel, store.EncodeChanges(origin, changes))
	return t.wrap("announce changes", err)
}
