package sqlstore

import (
	"fmt"
	"time"

	"tsconnect/control/store"
)

// Failed logins for the login rate limits: the table login_failures (migration 8).

func checkFailureKey(scope, key string) error {
	if scope == "" || len(scope) > store.MaxFailureKey || len(key) > store.MaxFailureKey {
		return fmt.Errorf("rate limit %.40q key %.40q: want a scope of 1 to %d bytes and a key of up to %d", scope, key, store.MaxFailureKey, store.MaxFailureKey)
	}
	return nil
}

func (t *txn) ReserveFailure(scope, key string, now time.Time, window time.Duration, limit, maxKeys int) (time.Duration, error) {
	if err := checkFailureKey(scope, key); err != nil {
		return 0, err
	}
	if window <= 0 || limit <= 0 || maxKeys < 0 {
		return 0, fmt.Errorf("rate limit %q: window %v, limit %d, max keys %d: want positive (max keys 0 or more)", scope, window, limit, maxKeys)
	}
	since := now.Add(-window)
	if _, err := t.exec(`DELETE FROM login_failures WHERE at <= ?`, ts(since)); err != nil {
		return 0, t.wrap("drop old failures", err)
	}
	rows, err := t.query(`SELECT at FROM login_failures WHERE scope = ? AND who = ? ORDER BY at, id`, scope, key)
	if err != nil {
		return 0, t.wrap("read failures", err)
	}
	var fs []time.Time
	for rows.Next() {
		var at int64
		if err := rows.Scan(&at); err != nil {
			rows.Close()
			return 0, t.wrap("read failures", err)
		}
		fs = append(fs, fromTS(at))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, t.wrap("read failures", err)
	}
	if len(fs) >= limit {
		// The attempt becomes possible when enough failures have left the window.
		return max(fs[len(fs)-limit].Add(window).Sub(now), time.Second), nil
	}
	if maxKeys > 0 && len(fs) == 0 {
		var keys, total int
		if err := t.queryRow(`SELECT COUNT(DISTINCT who), COUNT(*) FROM login_failures WHERE scope = ?`, scope).Scan(&keys, &total); err != nil {
			return 0, t.wrap("count failures", err)
		}
		if keys >= maxKeys {
			_, err := t.exec(`DELETE FROM login_failures WHERE id IN (SELECT id FROM login_failures WHERE scope = ? ORDER BY at, id LIMIT ?)`, scope, max(total/10, 1))
			if err != nil {
				return 0, t.wrap("drop a tenth of the failures", err)
			}
		}
	}
	_, err = t.exec(`INSERT INTO login_failures (scope, who, at) VALUES (?, ?, ?)`, scope, key, ts(now))
	return 0, t.wrap("count a failure", err)
}

func (t *txn) ReleaseFailure(scope, key string) error {
	if err := checkFailureKey(scope, key); err != nil {
		return err
	}
	_, err := t.exec(`DELETE FROM login_failures WHERE id IN (SELECT id FROM login_failures WHERE scope = ? AND who = ? ORDER BY at DESC, id DESC LIMIT 1)`, scope, key)
	return t.wrap("release a failure", err)
}

func (t *txn) ResetFailures(scope, key string) error {
	if err := checkFailureKey(scope, key); err != nil {
		return err
	}
	_, err := t.exec(`DELETE FROM login_failures WHERE scope = ? AND who = ?`, scope, key)
	return t.wrap("reset failures", err)
}
