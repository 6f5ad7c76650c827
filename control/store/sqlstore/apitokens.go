package sqlstore

import (
	"fmt"
	"strings"
	"time"

	"tsconnect/control/store"
)

// API tokens: the table api_tokens (migration 5). Scopes are stored comma-separated.

const apiTokenColumns = `id, hash, user_id, scopes, description, created, expires, last_used, revoked`

func (t *txn) InsertAPIToken(tk *store.APIToken) error {
	err := t.insert(&tk.ID, `INSERT INTO api_tokens (hash, user_id, scopes, description, created, expires) VALUES (?, ?, ?, ?, ?, ?)`,
		tk.Hash, tk.UserID, strings.Join(tk.Scopes, ","), tk.Description, ts(tk.Created), ts(tk.Expires))
	return t.wrap("insert API token", err)
}

func scanAPIToken(row interface{ Scan(...any) error }) (store.APIToken, error) {
	var tk store.APIToken
	var scopes string
	var created, expires, lastUsed int64
	err := row.Scan(&tk.ID, &tk.Hash, &tk.UserID, &scopes, &tk.Description, &created, &expires, &lastUsed, &tk.Revoked)
	if scopes != "" {
		tk.Scopes = strings.Split(scopes, ",")
	}
	tk.Created, tk.Expires, tk.LastUsed = fromTS(created), fromTS(expires), fromTS(lastUsed)
	return tk, err
}

func (t *txn) APITokenByHash(hash []byte) (store.APIToken, error) {
	tk, err := scanAPIToken(t.queryRow(`SELECT `+apiTokenColumns+` FROM api_tokens WHERE hash = ?`, hash))
	return tk, t.wrap("API token", err)
}

func (t *txn) APITokens() ([]store.APIToken, error) {
	rows, err := t.query(`SELECT ` + apiTokenColumns + ` FROM api_tokens ORDER BY id`)
	if err != nil {
		return nil, t.wrap("API tokens", err)
	}
	defer rows.Close()
	var out []store.APIToken
	for rows.Next() {
		tk, err := scanAPIToken(rows)
		if err != nil {
			return nil, t.wrap("API tokens", err)
		}
		out = append(out, tk)
	}
	return out, t.wrap("API tokens", rows.Err())
}

func (t *txn) RevokeAPIToken(id int64) error {
	res, err := t.exec(`UPDATE api_tokens SET revoked = ? WHERE id = ?`, true, id)
	return t.mustChange(res, err, fmt.Sprintf("revoke API token %d", id))
}

func (t *txn) TouchAPIToken(id int64, at time.Time) error {
	res, err := t.execUnguarded(`UPDATE api_tokens SET last_used = ? WHERE id = ?`, ts(at), id)
	return t.mustChange(res, err, fmt.Sprintf("touch API token %d", id))
}
