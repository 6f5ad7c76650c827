package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"tsconnect/control/store"
	"tsconnect/key"
)

// txn implements store.Tx over one database/sql transaction.
type txn struct {
	ctx   context.Context
	tx    *sql.Tx
	d     *Dialect
	cache *Stmts               // nil: every query parsed anew (or cached by the driver)
	stmts map[string]*sql.Stmt // cache's statements bound to tx
}

// NewTx returns the store.Tx of tx, valid while tx is, speaking d's SQL. With a cache
// (nil for none) its queries run as statements prepared once on tx's database; the caller
// calls cache.Ended once tx has ended.
func NewTx(ctx context.Context, tx *sql.Tx, d *Dialect, cache *Stmts) store.Tx {
	return &txn{ctx: ctx, tx: tx, d: d, cache: cache}
}

// stmt returns query's prepared statement bound to the transaction, or nil to run it unprepared.
func (t *txn) stmt(query string) *sql.Stmt {
	if t.cache == nil {
		return nil
	}
	if s := t.stmts[query]; s != nil {
		return s
	}
	s := t.cache.get(query)
	if s == nil {
		return nil
	}
	if t.stmts == nil {
		t.stmts = map[string]*sql.Stmt{}
	}
	s = t.tx.StmtContext(t.ctx, s)
	t.stmts[query] = s
	return s
}

// q turns a query written with ? placeholders into the dialect's.
func (t *txn) q(query string) string {
	if !t.d.Postgres {
		return query
	}
	return rewritten.render(query)
}

func (t *txn) exec(query string, args ...any) (res sql.Result, err error) {
	err = t.guarded(func() error {
		res, err = t.execUnguarded(query, args...)
		return err
	})
	return res, err
}

// execUnguarded runs a write that cannot be refused with ErrConflict (it sets no column a
// unique constraint covers, or it upserts) without guarded's savepoint, which costs
// PostgreSQL two more round trips: any error it can fail with ends the transaction anyway.
func (t *txn) execUnguarded(query string, args ...any) (sql.Result, error) {
	q := t.q(query)
	if s := t.stmt(q); s != nil {
		return s.ExecContext(t.ctx, args...)
	}
	return t.tx.ExecContext(t.ctx, q, args...)
}

// guarded runs a write. On PostgreSQL it runs under a savepoint, rolled back when the write
// fails: a failed statement aborts a PostgreSQL transaction, and the Tx contract (as SQLite
// keeps it) is that a write refused with ErrConflict leaves the transaction usable.
func (t *txn) guarded(write func() error) error {
	if !t.d.Postgres {
		return write()
	}
	if _, err := t.tx.ExecContext(t.ctx, `SAVEPOINT write`); err != nil {
		return err
	}
	if err := write(); err != nil {
		t.tx.ExecContext(t.ctx, `ROLLBACK TO SAVEPOINT write`)
		return err
	}
	_, err := t.tx.ExecContext(t.ctx, `RELEASE SAVEPOINT write`)
	return err
}

func (t *txn) queryRow(query string, args ...any) *sql.Row {
	q := t.q(query)
	if s := t.stmt(q); s != nil {
		return s.QueryRowContext(t.ctx, args...)
	}
	return t.tx.QueryRowContext(t.ctx, q, args...)
}

func (t *txn) query(query string, args ...any) (*sql.Rows, error) {
	q := t.q(query)
	if s := t.stmt(q); s != nil {
		return s.QueryContext(t.ctx, args...)
	}
	return t.tx.QueryContext(t.ctx, q, args...)
}

// insert runs an INSERT and stores the new row's id in id (RETURNING works in both dialects).
func (t *txn) insert(id *int64, query string, args ...any) error {
	return t.guarded(func() error { return t.queryRow(query+` RETURNING id`, args...).Scan(id) })
}

// insertOrConflict is insert for a row whose only likely refusal is a unique index: it
// inserts with ON CONFLICT DO NOTHING, and no row back is ErrConflict. The refused insert
// leaves the transaction usable without guarded's savepoint (two round trips on PostgreSQL
// for every registration).
func (t *txn) insertOrConflict(id *int64, query string, args ...any) error {
	err := t.queryRow(query+` ON CONFLICT DO NOTHING RETURNING id`, args...).Scan(id)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("a unique column's value is taken: %w", store.ErrConflict)
	}
	return err
}

// wrap turns driver errors into the store's: unique violations become ErrConflict,
// missing rows ErrNotFound.
func (t *txn) wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	if t.d.IsUnique(err) {
		return fmt.Errorf("%s: %w (%v)", what, store.ErrConflict, err)
	}
	return fmt.Errorf("%s: %s: %w", t.d.Name, what, err)
}

func ts(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromTS(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func tagsText(tags []string) string {
	if len(tags) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(tags)
	return string(b)
}

func parseTags(s string) ([]string, error) {
	var tags []string
	if err := json.Unmarshal([]byte(s), &tags); err != nil {
		return nil, fmt.Errorf("store: bad tags %q: %w", s, err)
	}
	if len(tags) == 0 {
		return nil, nil
	}
	return tags, nil
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// Settings.

func (t *txn) Setting(name string) (string, error) {
	var v string
	err := t.queryRow(`SELECT value FROM settings WHERE name = ?`, name).Scan(&v)
	return v, t.wrap("setting "+name, err)
}

func (t *txn) SetSetting(name, value string) error {
	_, err := t.execUnguarded(`INSERT INTO settings (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
	return t.wrap("set setting "+name, err)
}

// Users.

const userCols = `id, email, display_name, role, created, oidc_issuer, oidc_subject, idp_groups`

func scanUser(sc interface{ Scan(...any) error }) (store.User, error) {
	var u store.User
	var created int64
	var role, groups string
	if err := sc.Scan(&u.ID, &u.Email, &u.DisplayName, &role, &created, &u.OIDCIssuer, &u.OIDCSubject, &groups); err != nil {
		return u, err
	}
	u.Role, u.Created = store.Role(role), fromTS(created)
	var err error
	u.Groups, err = parseTags(groups)
	return u, err
}

func (t *txn) InsertUser(u *store.User) error {
	err := t.insert(&u.ID, `INSERT INTO users (email, display_name, role, created, oidc_issuer, oidc_subject, idp_groups)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		u.Email, u.DisplayName, string(u.Role), ts(u.Created), u.OIDCIssuer, u.OIDCSubject, tagsText(u.Groups))
	return t.wrap("insert user "+u.Email, err)
}

func (t *txn) UserByID(id int64) (store.User, error) {
	u, err := scanUser(t.queryRow(`SELECT `+userCols+` FROM users WHERE id = ?`, id))
	return u, t.wrap(fmt.Sprintf("user %d", id), err)
}

func (t *txn) UserByEmail(email string) (store.User, error) {
	u, err := scanUser(t.queryRow(`SELECT `+userCols+` FROM users WHERE email = ?`, email))
	return u, t.wrap("user "+email, err)
}

func (t *txn) UserByOIDC(issuer, subject string) (store.User, error) {
	if subject == "" {
		return store.User{}, fmt.Errorf("user of an empty OIDC subject: %w", store.ErrNotFound)
	}
	u, err := scanUser(t.queryRow(`SELECT `+userCols+` FROM users WHERE oidc_issuer = ? AND oidc_subject = ?`, issuer, subject))
	return u, t.wrap(fmt.Sprintf("user of OIDC subject %q at %s", subject, issuer), err)
}

func (t *txn) SetUserOIDC(userID int64, issuer, subject string) error {
	res, err := t.exec(`UPDATE users SET oidc_issuer = ?, oidc_subject = ? WHERE id = ?`, issuer, subject, userID)
	return t.mustChange(res, err, fmt.Sprintf("set OIDC identity of user %d", userID))
}

func (t *txn) SetUserEmail(userID int64, email string) error {
	res, err := t.exec(`UPDATE users SET email = ? WHERE id = ?`, email, userID)
	return t.mustChange(res, err, fmt.Sprintf("set email of user %d", userID))
}

func (t *txn) SetUserGroups(userID int64, groups []string) error {
	res, err := t.exec(`UPDATE users SET idp_groups = ? WHERE id = ?`, tagsText(groups), userID)
	return t.mustChange(res, err, fmt.Sprintf("set groups of user %d", userID))
}

func (t *txn) Users() ([]store.User, error) {
	rows, err := t.query(`SELECT ` + userCols + ` FROM users ORDER BY id`)
	if err != nil {
		return nil, t.wrap("list users", err)
	}
	defer rows.Close()
	var us []store.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, t.wrap("list users", err)
		}
		us = append(us, u)
	}
	return us, t.wrap("list users", rows.Err())
}

// Auth keys.

const keyCols = `id, hash, prefix, COALESCE(user_id, 0), reusable, ephemeral, tags, expires, used, used_at, revoked, created, description`

func scanKey(sc interface{ Scan(...any) error }) (store.AuthKey, error) {
	var k store.AuthKey
	var tags string
	var expires, usedAt, created int64
	if err := sc.Scan(&k.ID, &k.Hash, &k.Prefix, &k.UserID, &k.Reusable, &k.Ephemeral, &tags,
		&expires, &k.Used, &usedAt, &k.Revoked, &created, &k.Description); err != nil {
		return k, err
	}
	var err error
	k.Tags, err = parseTags(tags)
	k.Expires, k.UsedAt, k.Created = fromTS(expires), fromTS(usedAt), fromTS(created)
	return k, err
}

func (t *txn) DeleteUser(id int64) error {
	what := fmt.Sprintf("delete user %d", id)
	var live int
	if err := t.queryRow(`SELECT COUNT(*) FROM nodes WHERE user_id = ? AND deleted = 0`, id).Scan(&live); err != nil {
		return t.wrap(what, err)
	}
	if live > 0 {
		return fmt.Errorf("%s: %d live nodes still belong to it: %w", what, live, store.ErrConflict)
	}
	if _, err := t.exec(`UPDATE auth_keys SET user_id = NULL WHERE user_id = ?`, id); err != nil {
		return t.wrap(what, err)
	}
	if _, err := t.exec(`UPDATE nodes SET user_id = NULL WHERE user_id = ?`, id); err != nil {
		return t.wrap(what, err)
	}
	res, err := t.exec(`DELETE FROM users WHERE id = ?`, id)
	return t.mustChange(res, err, what)
}

func (t *txn) InsertAuthKey(k *store.AuthKey) error {
	err := t.insert(&k.ID, `INSERT INTO auth_keys (hash, prefix, user_id, reusable, ephemeral, tags, expires, used, used_at, revoked, created, description)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.Hash, k.Prefix, nullID(k.UserID), k.Reusable, k.Ephemeral, tagsText(k.Tags), ts(k.Expires),
		k.Used, ts(k.UsedAt), k.Revoked, ts(k.Created), k.Description)
	return t.wrap("insert auth key "+k.Prefix, err)
}

func (t *txn) AuthKeyByID(id int64) (store.AuthKey, error) {
	k, err := scanKey(t.queryRow(`SELECT `+keyCols+` FROM auth_keys WHERE id = ?`, id))
	return k, t.wrap(fmt.Sprintf("auth key %d", id), err)
}

func (t *txn) AuthKeyByPrefix(prefix string) (store.AuthKey, error) {
	k, err := scanKey(t.queryRow(`SELECT `+keyCols+` FROM auth_keys WHERE prefix = ?`, prefix))
	return k, t.wrap("auth key "+prefix, err)
}

func (t *txn) AuthKeys() ([]store.AuthKey, error) {
	rows, err := t.query(`SELECT ` + keyCols + ` FROM auth_keys ORDER BY id`)
	if err != nil {
		return nil, t.wrap("list auth keys", err)
	}
	defer rows.Close()
	var ks []store.AuthKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, t.wrap("list auth keys", err)
		}
		ks = append(ks, k)
	}
	return ks, t.wrap("list auth keys", rows.Err())
}

func (t *txn) UpdateAuthKey(k *store.AuthKey) error {
	res, err := t.execUnguarded(`UPDATE auth_keys SET used = ?, used_at = ?, revoked = ? WHERE id = ?`,
		k.Used, ts(k.UsedAt), k.Revoked, k.ID)
	return t.mustChange(res, err, fmt.Sprintf("update auth key %d", k.ID))
}

func (t *txn) mustChange(res sql.Result, err error, what string) error {
	if err != nil {
		return t.wrap(what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return t.wrap(what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}

// Nodes.

const nodeCols = `id, name, machine_key, node_key, COALESCE(user_id, 0), tags, ipv4, ipv6, ephemeral, logged_out,
	hostinfo, created, last_seen, deleted, expired, key_expiry, key_expiry_disabled`

func scanNode(sc interface{ Scan(...any) error }) (store.Node, error) {
	var n store.Node
	var mk, nk, tags, v4, v6 string
	var hi sql.NullString
	var created, lastSeen, deleted, expired, keyExpiry int64
	if err := sc.Scan(&n.ID, &n.Name, &mk, &nk, &n.UserID, &tags, &v4, &v6, &n.Ephemeral, &n.LoggedOut,
		&hi, &created, &lastSeen, &deleted, &expired, &keyExpiry, &n.KeyExpiryDisabled); err != nil {
		return n, err
	}
	var errs []error
	var err error
	n.MachineKey, err = key.ParsePublic(mk)
	errs = append(errs, err)
	n.NodeKey, err = key.ParsePublic(nk)
	errs = append(errs, err)
	n.Tags, err = parseTags(tags)
	errs = append(errs, err)
	n.IPv4, err = netip.ParseAddr(v4)
	errs = append(errs, err)
	n.IPv6, err = netip.ParseAddr(v6)
	errs = append(errs, err)
	if hi.Valid {
		n.Hostinfo = json.RawMessage(hi.String)
	}
	n.Created, n.LastSeen, n.Deleted, n.Expired = fromTS(created), fromTS(lastSeen), fromTS(deleted), fromTS(expired)
	n.KeyExpiry = fromTS(keyExpiry)
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("node %d: %w", n.ID, err)
	}
	return n, nil
}

func hostinfoArg(h json.RawMessage) any {
	if h == nil {
		return nil
	}
	return string(h)
}

func (t *txn) InsertNode(n *store.Node) error {
	if !n.LoggedOut {
		n.Expired = time.Time{}
	}
	err := t.insertOrConflict(&n.ID, `INSERT INTO nodes (name, machine_key, node_key, user_id, tags, ipv4, ipv6, ephemeral, logged_out,
		hostinfo, created, last_seen, deleted, expired, key_expiry, key_expiry_disabled)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		n.Name, n.MachineKey.String(), n.NodeKey.String(), nullID(n.UserID), tagsText(n.Tags),
		n.IPv4.String(), n.IPv6.String(), n.Ephemeral, n.LoggedOut, hostinfoArg(n.Hostinfo),
		ts(n.Created), ts(n.LastSeen), ts(n.Deleted), ts(n.Expired), ts(n.KeyExpiry), n.KeyExpiryDisabled)
	return t.wrap("insert node "+n.Name, err)
}

func (t *txn) UpdateNode(n *store.Node) error {
	if !n.LoggedOut {
		n.Expired = time.Time{} // registered again: no longer expired
	}
	res, err := t.exec(`UPDATE nodes SET name = ?, machine_key = ?, node_key = ?, user_id = ?, tags = ?, ipv4 = ?,
		ipv6 = ?, ephemeral = ?, logged_out = ?, hostinfo = ?, last_seen = ?, deleted = ?, expired = ?,
		key_expiry = ?, key_expiry_disabled = ? WHERE id = ?`,
		n.Name, n.MachineKey.String(), n.NodeKey.String(), nullID(n.UserID), tagsText(n.Tags),
		n.IPv4.String(), n.IPv6.String(), n.Ephemeral, n.LoggedOut, hostinfoArg(n.Hostinfo),
		ts(n.LastSeen), ts(n.Deleted), ts(n.Expired), ts(n.KeyExpiry), n.KeyExpiryDisabled, n.ID)
	return t.mustChange(res, err, fmt.Sprintf("update node %d", n.ID))
}

func (t *txn) NodeByID(id int64) (store.Node, error) {
	n, err := scanNode(t.queryRow(`SELECT `+nodeCols+` FROM nodes WHERE id = ?`, id))
	return n, t.wrap(fmt.Sprintf("node %d", id), err)
}

func (t *txn) NodeByMachineKey(k key.Public) (store.Node, error) {
	n, err := scanNode(t.queryRow(`SELECT `+nodeCols+` FROM nodes WHERE machine_key = ? ORDER BY id DESC LIMIT 1`, k.String()))
	return n, t.wrap("node of machine "+k.ShortString(), err)
}

func (t *txn) NodeByNodeKey(k key.Public) (store.Node, error) {
	n, err := scanNode(t.queryRow(`SELECT `+nodeCols+` FROM nodes WHERE node_key = ? AND deleted = 0`, k.String()))
	return n, t.wrap("node with key "+k.ShortString(), err)
}

func (t *txn) NodesOfKeys(nk, mk key.Public) (byNodeKey, byMachine store.Node, err error) {
	what := "nodes of node key " + nk.ShortString() + " and machine " + mk.ShortString()
	// Two index scans, not an OR over them with a subquery: PostgreSQL plans every
	// statement for its arguments (pgstore), and the OR's sublink took most of that.
	rows, err := t.query(`SELECT `+nodeCols+` FROM nodes WHERE node_key = ? AND deleted = 0
		UNION ALL SELECT * FROM (SELECT `+nodeCols+` FROM nodes WHERE machine_key = ? ORDER BY id DESC LIMIT 1) AS newest`, nk.String(), mk.String())
	if err != nil {
		return byNodeKey, byMachine, t.wrap(what, err)
	}
	defer rows.Close()
	for rows.Next() {
		n, err := scanNode(rows)
		if err != nil {
			return byNodeKey, byMachine, t.wrap(what, err)
		}
		if n.NodeKey == nk && n.Deleted.IsZero() {
			byNodeKey = n
		}
		if n.MachineKey == mk {
			byMachine = n
		}
	}
	return byNodeKey, byMachine, t.wrap(what, rows.Err())
}

func (t *txn) Nodes() ([]store.Node, error) {
	rows, err := t.query(`SELECT ` + nodeCols + ` FROM nodes WHERE deleted = 0 ORDER BY id`)
	if err != nil {
		return nil, t.wrap("list nodes", err)
	}
	defer rows.Close()
	var ns []store.Node
	for rows.Next() {
		n, err := scanNode(rows)
		if err != nil {
			return nil, t.wrap("list nodes", err)
		}
		ns = append(ns, n)
	}
	return ns, t.wrap("list nodes", rows.Err())
}

func (t *txn) NameInUse(name string) (bool, error) {
	var one int
	err := t.queryRow(`SELECT 1 FROM nodes WHERE name = ? AND deleted = 0`, name).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, t.wrap("name in use", err)
}

func (t *txn) AddrInUse(a netip.Addr) (bool, error) {
	col := "ipv4"
	if a.Is6() {
		col = "ipv6"
	}
	var one int
	err := t.queryRow(`SELECT 1 FROM nodes WHERE `+col+` = ? AND deleted = 0`, a.String()).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, t.wrap("address in use", err)
}

func (t *txn) PurgeNode(id int64) error {
	res, err := t.exec(`DELETE FROM nodes WHERE id = ?`, id)
	return t.mustChange(res, err, fmt.Sprintf("purge node %d", id))
}

func (t *txn) SetSeen(n *store.Node) error {
	if n.LoggedOut {
		return fmt.Errorf("set node %d seen: it is logged out", n.ID)
	}
	n.Expired = time.Time{} // as UpdateNode: connected again, no longer expired
	res, err := t.execUnguarded(`UPDATE nodes SET hostinfo = ?, last_seen = ?, expired = ? WHERE id = ?`,
		hostinfoArg(n.Hostinfo), ts(n.LastSeen), ts(n.Expired), n.ID)
	return t.mustChange(res, err, fmt.Sprintf("set node %d seen", n.ID))
}

func (t *txn) SetLastSeen(id int64, at time.Time) error {
	res, err := t.execUnguarded(`UPDATE nodes SET last_seen = ? WHERE id = ?`, ts(at), id)
	return t.mustChange(res, err, fmt.Sprintf("set last seen of node %d", id))
}

// batchRows bounds how many rows one statement of NodesByMachineKeys or SetSeenAll names (3
// parameters a row: far under SQLite's 32,766).
const batchRows = 256

// placeholders returns n ?s separated by commas.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func (t *txn) NodesByMachineKeys(ks []key.Public) (map[key.Public]store.Node, error) {
	out := make(map[key.Public]store.Node, len(ks))
	for chunk := range slices.Chunk(ks, batchRows) {
		args := make([]any, len(chunk))
		for i, k := range chunk {
			args[i] = k.String()
		}
		rows, err := t.query(`SELECT `+nodeCols+` FROM nodes WHERE machine_key IN (`+placeholders(len(chunk))+`) ORDER BY id`, args...)
		if err != nil {
			return nil, t.wrap("nodes of machines", err)
		}
		for rows.Next() {
			n, err := scanNode(rows)
			if err != nil {
				rows.Close()
				return nil, t.wrap("nodes of machines", err)
			}
			out[n.MachineKey] = n // in id order: the newest stays
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, t.wrap("nodes of machines", err)
		}
	}
	return out, nil
}

func (t *txn) SetSeenAll(ns []*store.Node) error {
	for _, n := range ns {
		if n.LoggedOut {
			return fmt.Errorf("set node %d seen: it is logged out", n.ID)
		}
	}
	for chunk := range slices.Chunk(ns, batchRows) {
		var hi, seen strings.Builder
		args := make([]any, 0, 5*len(chunk))
		ids := make([]any, 0, len(chunk))
		distinct := map[int64]bool{}
		for _, n := range chunk {
			n.Expired = time.Time{} // as SetSeen
			hi.WriteString(" WHEN ? THEN ?")
			args = append(args, n.ID, hostinfoArg(n.Hostinfo))
			ids = append(ids, n.ID)
			distinct[n.ID] = true
		}
		for _, n := range chunk {
			seen.WriteString(" WHEN ? THEN CAST(? AS BIGINT)")
			args = append(args, n.ID, ts(n.LastSeen))
		}
		args = append(args, ids...)
		res, err := t.execUnguarded(`UPDATE nodes SET hostinfo = CASE id`+hi.String()+` END, last_seen = CASE id`+seen.String()+
			` END, expired = 0 WHERE id IN (`+placeholders(len(chunk))+`)`, args...)
		what := fmt.Sprintf("set %d nodes seen", len(chunk))
		if err != nil {
			return t.wrap(what, err)
		}
		if got, err := res.RowsAffected(); err != nil {
			return t.wrap(what, err)
		} else if got != int64(len(distinct)) {
			return fmt.Errorf("%s: %d of them not found: %w", what, int64(len(distinct))-got, store.ErrNotFound)
		}
	}
	return nil
}
