package sqlitestore

import (
	"database/sql"
	"fmt"
)

// migrations[i] takes the schema from version i to i+1. Never edit a released entry:
// append a new one.
var migrations = []string{
	`CREATE TABLE users (
		id           INTEGER PRIMARY KEY,
		email        TEXT NOT NULL UNIQUE,
		display_name TEXT NOT NULL DEFAULT '',
		role         TEXT NOT NULL CHECK (role IN ('admin', 'member')),
		created      INTEGER NOT NULL
	);
	CREATE TABLE auth_keys (
		id        INTEGER PRIMARY KEY,
		hash      BLOB NOT NULL,
		prefix    TEXT NOT NULL UNIQUE,
		user_id   INTEGER REFERENCES users(id),
		reusable  INTEGER NOT NULL DEFAULT 0,
		ephemeral INTEGER NOT NULL DEFAULT 0,
		tags      TEXT NOT NULL DEFAULT '[]',
		expires   INTEGER NOT NULL DEFAULT 0,
		used      INTEGER NOT NULL DEFAULT 0,
		used_at   INTEGER NOT NULL DEFAULT 0,
		revoked   INTEGER NOT NULL DEFAULT 0,
		created   INTEGER NOT NULL
	);
	CREATE TABLE nodes (
		id          INTEGER PRIMARY KEY AUTOINCREMENT,
		name        TEXT NOT NULL,
		machine_key TEXT NOT NULL,
		node_key    TEXT NOT NULL,
		user_id     INTEGER REFERENCES users(id),
		tags        TEXT NOT NULL DEFAULT '[]',
		ipv4        TEXT NOT NULL,
		ipv6        TEXT NOT NULL,
		ephemeral   INTEGER NOT NULL DEFAULT 0,
		logged_out  INTEGER NOT NULL DEFAULT 0,
		hostinfo    TEXT,
		created     INTEGER NOT NULL,
		last_seen   INTEGER NOT NULL DEFAULT 0,
		deleted     INTEGER NOT NULL DEFAULT 0
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
	ALTER TABLE nodes ADD COLUMN expired INTEGER NOT NULL DEFAULT 0;
	CREATE TABLE web_sessions (
		hash      BLOB PRIMARY KEY,
		user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		created   INTEGER NOT NULL,
		last_seen INTEGER NOT NULL
	);
	CREATE INDEX web_sessions_user ON web_sessions(user_id);
	CREATE TABLE auth_events (
		id      INTEGER PRIMARY KEY AUTOINCREMENT,
		time    INTEGER NOT NULL,
		user_id INTEGER NOT NULL DEFAULT 0,
		email   TEXT NOT NULL DEFAULT '',
		method  TEXT NOT NULL,
		kind    TEXT NOT NULL,
		ok      INTEGER NOT NULL,
		detail  TEXT NOT NULL DEFAULT ''
	);
	CREATE TABLE last_auth (
		user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		method  TEXT NOT NULL,
		time    INTEGER NOT NULL,
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
		id          INTEGER PRIMARY KEY AUTOINCREMENT,
		hash        BLOB NOT NULL UNIQUE,
		user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		scopes      TEXT NOT NULL,
		description TEXT NOT NULL DEFAULT '',
		created     INTEGER NOT NULL,
		expires     INTEGER NOT NULL,
		last_used   INTEGER NOT NULL DEFAULT 0,
		revoked     INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX api_tokens_user ON api_tokens(user_id);`,
	// 6: pending SSH checks and interactive logins (only the SHA-256 of each URL's ID), so
	// a restart of control loses neither.
	`CREATE TABLE checks (
		hash       BLOB PRIMARY KEY,
		src_node   INTEGER NOT NULL,
		dst_node   INTEGER NOT NULL,
		user_id    INTEGER NOT NULL,
		local_user TEXT NOT NULL,
		info       TEXT NOT NULL,
		created    INTEGER NOT NULL,
		expires    INTEGER NOT NULL,
		verdict    TEXT NOT NULL DEFAULT '',
		message    TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX checks_src ON checks(src_node);
	CREATE INDEX checks_dst ON checks(dst_node, src_node);
	CREATE INDEX checks_expires ON checks(expires);
	CREATE TABLE logins (
		hash        BLOB PRIMARY KEY,
		machine_key TEXT NOT NULL,
		node_key    TEXT NOT NULL,
		source      TEXT NOT NULL,
		request     TEXT NOT NULL,
		created     INTEGER NOT NULL,
		expires     INTEGER NOT NULL
	);
	CREATE INDEX logins_machine ON logins(machine_key);
	CREATE INDEX logins_source ON logins(source);
	CREATE INDEX logins_expires ON logins(expires);`,
}

// migrate brings the schema up to date in one transaction per step.
func migrate(db *sql.DB) error {
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	for {
		tx, err := db.Begin()
		if err != nil {
			return fmt.Errorf("migrate: begin: %w", err)
		}
		var v int
		err = tx.QueryRow(`SELECT version FROM schema_version`).Scan(&v)
		if err == sql.ErrNoRows {
			_, err = tx.Exec(`INSERT INTO schema_version (version) VALUES (0)`)
		}
		if err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate: read version: %w", err)
		}
		if v > len(migrations) {
			tx.Rollback()
			return fmt.Errorf("database schema version %d is newer than this program knows (%d): upgrade the program", v, len(migrations))
		}
		if v == len(migrations) {
			return tx.Commit()
		}
		if _, err := tx.Exec(migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to version %d: %w", v+1, err)
		}
		if _, err := tx.Exec(`UPDATE schema_version SET version = ?`, v+1); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to version %d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate to version %d: commit: %w", v+1, err)
		}
	}
}
