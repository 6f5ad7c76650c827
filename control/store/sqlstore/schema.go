package sqlstore

import "strings"

// schema[i] takes the schema from version i to i+1, in both dialects: {pk} {serial} {int}
// {bool} {false} {blob} stand for the column types that differ (see types). Never edit a
// released entry: append a new one.
var schema = []string{
	`CREATE TABLE users (
		id           {pk},
		email        TEXT NOT NULL UNIQUE,
		display_name TEXT NOT NULL DEFAULT '',
		role         TEXT NOT NULL CHECK (role IN ('admin', 'member')),
		created      {int} NOT NULL
	);
	CREATE TABLE auth_keys (
		id        {pk},
		hash      {blob} NOT NULL,
		prefix    TEXT NOT NULL UNIQUE,
		user_id   {int} REFERENCES users(id),
		reusable  {bool} NOT NULL DEFAULT {false},
		ephemeral {bool} NOT NULL DEFAULT {false},
		tags      TEXT NOT NULL DEFAULT '[]',
		expires   {int} NOT NULL DEFAULT 0,
		used      {bool} NOT NULL DEFAULT {false},
		used_at   {int} NOT NULL DEFAULT 0,
		revoked   {bool} NOT NULL DEFAULT {false},
		created   {int} NOT NULL
	);
	CREATE TABLE nodes (
		id          {serial},
		name        TEXT NOT NULL,
		machine_key TEXT NOT NULL,
		node_key    TEXT NOT NULL,
		user_id     {int} REFERENCES users(id),
		tags        TEXT NOT NULL DEFAULT '[]',
		ipv4        TEXT NOT NULL,
		ipv6        TEXT NOT NULL,
		ephemeral   {bool} NOT NULL DEFAULT {false},
		logged_out  {bool} NOT NULL DEFAULT {false},
		hostinfo    TEXT,
		created     {int} NOT NULL,
		last_seen   {int} NOT NULL DEFAULT 0,
		deleted     {int} NOT NULL DEFAULT 0
	);
	CREATE UNIQUE INDEX nodes_name ON nodes(name) WHERE deleted = 0;
	CREATE UNIQUE INDEX nodes_machine_key ON nodes(machine_key) WHERE deleted = 0;
	CREATE UNIQUE INDEX nodes_node_key ON nodes(node_key) WHERE deleted = 0;
	CREATE UNIQUE INDEX nodes_ipv4 ON nodes(ipv4) WHERE deleted = 0;
	CREATE UNIQUE INDEX nodes_ipv6 ON nodes(ipv6) WHERE deleted = 0;
	CREATE INDEX nodes_machine_key_all ON nodes(machine_key, id);
	CREATE TABLE settings (
		name  TEXT PRIMARY KEY,
		value TEXT NOT NULL
	);`,
	// 2: console logins (passwords, web sessions), the audit log, node key expiry.
	`ALTER TABLE users ADD COLUMN password TEXT NOT NULL DEFAULT '';
	ALTER TABLE nodes ADD COLUMN expired {int} NOT NULL DEFAULT 0;
	CREATE TABLE web_sessions (
		hash      {blob} PRIMARY KEY,
		user_id   {int} NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		created   {int} NOT NULL,
		last_seen {int} NOT NULL
	);
	CREATE INDEX web_sessions_user ON web_sessions(user_id);
	CREATE TABLE auth_events (
		id      {serial},
		time    {int} NOT NULL,
		user_id {int} NOT NULL DEFAULT 0,
		email   TEXT NOT NULL DEFAULT '',
		method  TEXT NOT NULL,
		kind    TEXT NOT NULL,
		ok      {bool} NOT NULL,
		detail  TEXT NOT NULL DEFAULT ''
	);
	CREATE TABLE last_auth (
		user_id {int} NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		method  TEXT NOT NULL,
		time    {int} NOT NULL,
		PRIMARY KEY (user_id, method)
	);`,
	// 3: users signing in with an OpenID Provider, and their groups there.
	`ALTER TABLE users ADD COLUMN oidc_issuer TEXT NOT NULL DEFAULT '';
	ALTER TABLE users ADD COLUMN oidc_subject TEXT NOT NULL DEFAULT '';
	ALTER TABLE users ADD COLUMN idp_groups TEXT NOT NULL DEFAULT '[]';
	CREATE UNIQUE INDEX users_oidc ON users(oidc_issuer, oidc_subject) WHERE oidc_subject != '';`,
	// 4: what an auth key is for, as its creator described it.
	`ALTER TABLE auth_keys ADD COLUMN description TEXT NOT NULL DEFAULT '';`,
	// 5: API tokens (only the SHA-256 of each secret), gone with their user.
	`CREATE TABLE api_tokens (
		id          {serial},
		hash        {blob} NOT NULL UNIQUE,
		user_id     {int} NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		scopes      TEXT NOT NULL,
		description TEXT NOT NULL DEFAULT '',
		created     {int} NOT NULL,
		expires     {int} NOT NULL,
		last_used   {int} NOT NULL DEFAULT 0,
		revoked     {bool} NOT NULL DEFAULT {false}
	);
	CREATE INDEX api_tokens_user ON api_tokens(user_id);`,
	// 6: pending SSH checks and interactive logins (only the SHA-256 of each URL's ID), so
	// a restart of control loses neither.
	`CREATE TABLE checks (
		hash       {blob} PRIMARY KEY,
		src_node   {int} NOT NULL,
		dst_node   {int} NOT NULL,
		user_id    {int} NOT NULL,
		local_user TEXT NOT NULL,
		info       TEXT NOT NULL,
		created    {int} NOT NULL,
		expires    {int} NOT NULL,
		verdict    TEXT NOT NULL DEFAULT '',
		message    TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX checks_src ON checks(src_node);
	CREATE INDEX checks_dst ON checks(dst_node, src_node);
	CREATE INDEX checks_expires ON checks(expires);
	CREATE TABLE logins (
		hash        {blob} PRIMARY KEY,
		machine_key TEXT NOT NULL,
		node_key    TEXT NOT NULL,
		source      TEXT NOT NULL,
		request     TEXT NOT NULL,
		created     {int} NOT NULL,
		expires     {int} NOT NULL
	);
	CREATE INDEX logins_machine ON logins(machine_key);
	CREATE INDEX logins_source ON logins(source);
	CREATE INDEX logins_expires ON logins(expires);`,
	// 7: leases on background work, so that of several replicas one does it at a time.
	`CREATE TABLE leases (
		name    TEXT PRIMARY KEY,
		holder  TEXT NOT NULL,
		expires {int} NOT NULL
	);`,
	// 8: failed logins counted for the login rate limits, shared by the replicas.
	`CREATE TABLE login_failures (
		id    {pk},
		scope TEXT NOT NULL,
		who   TEXT NOT NULL,
		at    {int} NOT NULL
	);
	CREATE INDEX login_failures_who ON login_failures(scope, who, at);
	CREATE INDEX login_failures_at ON login_failures(at);`,
	// 9: node-key expiry: when each node's key expires, and whether an admin disabled that.
	`ALTER TABLE nodes ADD COLUMN key_expiry {int} NOT NULL DEFAULT 0;
	ALTER TABLE nodes ADD COLUMN key_expiry_disabled {bool} NOT NULL DEFAULT {false};`,
	// 10: SSH login decisions the agents report, in the audit log; its retention sweep by time.
	`ALTER TABLE auth_events ADD COLUMN ssh TEXT NOT NULL DEFAULT '';
	CREATE INDEX auth_events_time ON auth_events(time);`,
}

// Tables are the tables of the schema, in an order that copies them with every foreign key
// met (users before what refers to them).
var Tables = []string{"users", "auth_keys", "nodes", "settings", "web_sessions", "auth_events",
	"last_auth", "api_tokens", "checks", "logins", "leases", "login_failures"}

// types maps schema's placeholders to SQLite's and PostgreSQL's column types. SQLite's are
// the ones its databases were made with before PostgreSQL was supported.
var types = map[string][2]string{
	"{pk}":     {"INTEGER PRIMARY KEY", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"},
	"{serial}": {"INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"},
	"{int}":    {"INTEGER", "BIGINT"},
	"{bool}":   {"INTEGER", "BOOLEAN"},
	"{false}":  {"0", "false"},
	"{blob}":   {"BLOB", "BYTEA"},
}

// Migrations returns the schema history in d's SQL: entry i takes a database from
// version i to i+1.
func (d *Dialect) Migrations() []string {
	col := 0
	if d.Postgres {
		col = 1
	}
	var pairs []string
	for k, v := range types {
		pairs = append(pairs, k, v[col])
	}
	r := strings.NewReplacer(pairs...)
	out := make([]string, len(schema))
	for i, m := range schema {
		out[i] = r.Replace(m)
	}
	return out
}
