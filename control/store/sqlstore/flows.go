package sqlstore

import (
	"errors"
	"time"

	"tsconnect/control/store"
	"tsconnect/key"
)

// Pending SSH checks and interactive logins: the tables checks and logins (migration 6).

const checkColumns = `hash, src_node, dst_node, user_id, local_user, info, created, expires, verdict, message`

func (t *txn) InsertCheck(c *store.Check) error {
	_, err := t.exec(`INSERT INTO checks (`+checkColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.Hash, c.SrcNode, c.DstNode, c.UserID, c.LocalUser, string(c.Info), ts(c.Created), ts(c.Expires), c.Verdict, c.Message)
	return t.wrap("insert check", err)
}

func scanCheck(row interface{ Scan(...any) error }) (store.Check, error) {
	var c store.Check
	var info string
	var created, expires int64
	err := row.Scan(&c.Hash, &c.SrcNode, &c.DstNode, &c.UserID, &c.LocalUser, &info, &created, &expires, &c.Verdict, &c.Message)
	c.Info, c.Created, c.Expires = []byte(info), fromTS(created), fromTS(expires)
	return c, err
}

func (t *txn) CheckByHash(hash []byte) (store.Check, error) {
	c, err := scanCheck(t.queryRow(`SELECT `+checkColumns+` FROM checks WHERE hash = ?`, hash))
	return c, t.wrap("check", err)
}

func (t *txn) ChecksFor(dst, src int64, localUser string) ([]store.Check, error) {
	rows, err := t.query(`SELECT `+checkColumns+` FROM checks WHERE dst_node = ? AND src_node = ? AND local_user = ?
		ORDER BY created DESC`, dst, src, localUser)
	if err != nil {
		return nil, t.wrap("checks", err)
	}
	defer rows.Close()
	var out []store.Check
	for rows.Next() {
		c, err := scanCheck(rows)
		if err != nil {
			return nil, t.wrap("checks", err)
		}
		out = append(out, c)
	}
	return out, t.wrap("checks", rows.Err())
}

func (t *txn) CountChecks(src, dst int64) (bySrc, byDst, total int, err error) {
	err = t.queryRow(`SELECT COUNT(*) FILTER (WHERE src_node = ?), COUNT(*) FILTER (WHERE dst_node = ?), COUNT(*) FROM checks`,
		src, dst).Scan(&bySrc, &byDst, &total)
	return bySrc, byDst, total, t.wrap("count checks", err)
}

func (t *txn) DecideCheck(hash []byte, verdict, message string) error {
	res, err := t.exec(`UPDATE checks SET verdict = ?, message = ? WHERE hash = ? AND verdict = ''`, verdict, message, hash)
	return t.mustChange(res, err, "decide check")
}

func (t *txn) DeleteCheck(hash []byte) error {
	_, err := t.exec(`DELETE FROM checks WHERE hash = ?`, hash)
	return t.wrap("delete check", err)
}

const loginColumns = `hash, machine_key, node_key, source, request, created, expires`

func (t *txn) InsertLogin(l *store.Login) error {
	_, err := t.exec(`INSERT INTO logins (`+loginColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		l.Hash, l.MachineKey.String(), l.NodeKey.String(), l.Source, string(l.Request), ts(l.Created), ts(l.Expires))
	return t.wrap("insert login", err)
}

func scanLogin(row interface{ Scan(...any) error }) (store.Login, error) {
	var l store.Login
	var mk, nk, req string
	var created, expires int64
	if err := row.Scan(&l.Hash, &mk, &nk, &l.Source, &req, &created, &expires); err != nil {
		return l, err
	}
	l.Request, l.Created, l.Expires = []byte(req), fromTS(created), fromTS(expires)
	var err1, err2 error
	l.MachineKey, err1 = key.ParsePublic(mk)
	l.NodeKey, err2 = key.ParsePublic(nk)
	return l, errors.Join(err1, err2)
}

func (t *txn) LoginByHash(hash []byte) (store.Login, error) {
	l, err := scanLogin(t.queryRow(`SELECT `+loginColumns+` FROM logins WHERE hash = ?`, hash))
	return l, t.wrap("login", err)
}

func (t *txn) LoginsByMachineKey(k key.Public) ([]store.Login, error) {
	rows, err := t.query(`SELECT `+loginColumns+` FROM logins WHERE machine_key = ? ORDER BY created DESC`, k.String())
	if err != nil {
		return nil, t.wrap("logins", err)
	}
	defer rows.Close()
	var out []store.Login
	for rows.Next() {
		l, err := scanLogin(rows)
		if err != nil {
			return nil, t.wrap("logins", err)
		}
		out = append(out, l)
	}
	return out, t.wrap("logins", rows.Err())
}

func (t *txn) CountLogins(source string) (bySource, total int, err error) {
	err = t.queryRow(`SELECT COUNT(*) FILTER (WHERE source = ?), COUNT(*) FROM logins`, source).Scan(&bySource, &total)
	return bySource, total, t.wrap("count logins", err)
}

func (t *txn) DeleteLogin(hash []byte) error {
	res, err := t.exec(`DELETE FROM logins WHERE hash = ?`, hash)
	return t.mustChange(res, err, "delete login")
}

func (t *txn) DeleteExpiredFlows(now time.Time) (int, error) {
	var n int64
	for _, table := range []string{"checks", "logins"} {
		res, err := t.exec(`DELETE FROM `+table+` WHERE expires <= ?`, ts(now))
		if err != nil {
			return int(n), t.wrap("delete expired "+table, err)
		}
		m, _ := res.RowsAffected()
		n += m
	}
	return int(n), nil
}
