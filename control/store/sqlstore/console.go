package sqlstore

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"tsconnect/control/store"
)

// Passwords, console sign-ins and the audit log. Sign-ins live in the table web_sessions:
// its name stays (renaming it would need a migration for nothing).

func (t *txn) PasswordHash(userID int64) (string, error) {
	var h string
	err := t.queryRow(`SELECT password FROM users WHERE id = ?`, userID).Scan(&h)
	return h, t.wrap(fmt.Sprintf("password of user %d", userID), err)
}

func (t *txn) SetPasswordHash(userID int64, hash string) error {
	res, err := t.exec(`UPDATE users SET password = ? WHERE id = ?`, hash, userID)
	return t.mustChange(res, err, fmt.Sprintf("set password of user %d", userID))
}

func (t *txn) InsertSignIn(ws *store.SignIn) error {
	_, err := t.exec(`INSERT INTO web_sessions (hash, user_id, created, last_seen) VALUES (?, ?, ?, ?)`,
		ws.Hash, ws.UserID, ts(ws.Created), ts(ws.LastSeen))
	return t.wrap("insert sign-in", err)
}

func (t *txn) SignIn(hash []byte) (store.SignIn, error) {
	ws := store.SignIn{Hash: hash}
	var created, lastSeen int64
	err := t.queryRow(`SELECT user_id, created, last_seen FROM web_sessions WHERE hash = ?`, hash).
		Scan(&ws.UserID, &created, &lastSeen)
	ws.Created, ws.LastSeen = fromTS(created), fromTS(lastSeen)
	return ws, t.wrap("sign-in", err)
}

func (t *txn) TouchSignIn(hash []byte, at time.Time) error {
	res, err := t.execUnguarded(`UPDATE web_sessions SET last_seen = ? WHERE hash = ?`, ts(at), hash)
	return t.mustChange(res, err, "touch sign-in")
}

func (t *txn) DeleteSignIn(hash []byte) error {
	_, err := t.exec(`DELETE FROM web_sessions WHERE hash = ?`, hash)
	return t.wrap("delete sign-in", err)
}

func (t *txn) DeleteSignIns(userID int64) (int, error) {
	return t.deleteCount(fmt.Sprintf("delete sign-ins of user %d", userID), `DELETE FROM web_sessions WHERE user_id = ?`, userID)
}

func (t *txn) DeleteIdleSignIns(cutoff time.Time) (int, error) {
	return t.deleteCount("delete idle sign-ins", `DELETE FROM web_sessions WHERE last_seen < ?`, ts(cutoff))
}

func (t *txn) deleteCount(what, q string, args ...any) (int, error) {
	res, err := t.exec(q, args...)
	if err != nil {
		return 0, t.wrap(what, err)
	}
	n, err := res.RowsAffected()
	return int(n), t.wrap(what, err)
}

func (t *txn) InsertAuthEvent(e *store.AuthEvent) error {
	err := t.insert(&e.ID, `INSERT INTO auth_events (time, user_id, email, method, kind, ok, detail, ssh) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		ts(e.Time), e.UserID, e.Email, e.Method, e.Kind, e.OK, e.Detail, string(e.SSH))
	return t.wrap("insert auth event", err)
}

func (t *txn) AuthEvents(before int64, limit int) ([]store.AuthEvent, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	return t.authEvents(`WHERE id < ? ORDER BY id DESC LIMIT ?`, before, limit)
}

func (t *txn) AuthEventsAfter(after int64, since time.Time, limit int) ([]store.AuthEvent, error) {
	at := int64(0)
	if !since.IsZero() {
		at = ts(since)
	}
	return t.authEvents(`WHERE id > ? AND time >= ? ORDER BY id LIMIT ?`, after, at, limit)
}

// authEvents lists the audit events a WHERE … ORDER BY … LIMIT clause picks.
func (t *txn) authEvents(clause string, args ...any) ([]store.AuthEvent, error) {
	rows, err := t.query(`SELECT id, time, user_id, email, method, kind, ok, detail, ssh FROM auth_events `+clause, args...)
	if err != nil {
		return nil, t.wrap("list auth events", err)
	}
	defer rows.Close()
	var out []store.AuthEvent
	for rows.Next() {
		var e store.AuthEvent
		var at int64
		var ssh string
		if err := rows.Scan(&e.ID, &at, &e.UserID, &e.Email, &e.Method, &e.Kind, &e.OK, &e.Detail, &ssh); err != nil {
			return nil, t.wrap("list auth events", err)
		}
		e.Time = fromTS(at)
		if ssh != "" {
			e.SSH = json.RawMessage(ssh)
		}
		out = append(out, e)
	}
	return out, t.wrap("list auth events", rows.Err())
}

func (t *txn) DeleteAuthEventsBefore(cutoff time.Time) (int, error) {
	return t.deleteCount("delete old auth events", `DELETE FROM auth_events WHERE time < ?`, ts(cutoff))
}

func (t *txn) SetLastAuth(userID int64, method string, at time.Time) error {
	_, err := t.exec(`INSERT INTO last_auth (user_id, method, time) VALUES (?, ?, ?)
		ON CONFLICT (user_id, method) DO UPDATE SET time = excluded.time`, userID, method, ts(at))
	return t.wrap(fmt.Sprintf("set last auth of user %d", userID), err)
}

func (t *txn) LastAuth(userID int64) (time.Time, string, error) {
	var at int64
	var method string
	err := t.queryRow(`SELECT time, method FROM last_auth WHERE user_id = ? ORDER BY time DESC LIMIT 1`, userID).
		Scan(&at, &method)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, "", fmt.Errorf("last auth of user %d: %w", userID, store.ErrNotFound)
	}
	return fromTS(at), method, t.wrap(fmt.Sprintf("last auth of user %d", userID), err)
}
