package sqlstore

import (
	"fmt"
	"time"

	"tsconnect/control/store"
)

// Leases on background work: the table leases (migration 7).

func checkLease(name, holder string, ttl time.Duration) error {
	if name == "" || holder == "" || len(name) > store.MaxLeaseName || len(holder) > store.MaxLeaseName {
		return fmt.Errorf("lease %.40q of holder %.40q: want a name and a holder of 1 to %d bytes", name, holder, store.MaxLeaseName)
	}
	if ttl <= 0 {
		return fmt.Errorf("lease %q: ttl %v is not positive", name, ttl)
	}
	return nil
}

func (t *txn) TryLease(name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	if err := checkLease(name, holder, ttl); err != nil {
		return false, err
	}
	res, err := t.execUnguarded(`INSERT INTO leases (name, holder, expires) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires
		WHERE leases.holder = excluded.holder OR leases.expires <= ?`, name, holder, ts(now.Add(ttl)), ts(now))
	if err != nil {
		return false, t.wrap("take lease "+name, err)
	}
	n, err := res.RowsAffected()
	return n == 1, t.wrap("take lease "+name, err)
}

func (t *txn) ReleaseLease(name, holder string) error {
	_, err := t.exec(`DELETE FROM leases WHERE name = ? AND holder = ?`, name, holder)
	return t.wrap("release lease "+name, err)
}
