package sqlitestore

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"tsconnect/control/store"
	"tsconnect/key"
)

// TestMigrateFromV1 opens a database made by the first schema, with a user and a node in
// it, and finds both after the upgrade with the new columns at their defaults.
func TestMigrateFromV1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE schema_version (version INTEGER NOT NULL)`, `INSERT INTO schema_version VALUES (1)`, migrations[0],
		`INSERT INTO users (email, role, created) VALUES ('a@example.com', 'admin', 1)`,
		`INSERT INTO nodes (name, machine_key, node_key, user_id, ipv4, ipv6, logged_out, created) VALUES ('n', '` +
			key.NewPrivate().Public().String() + `', '` + key.NewPrivate().Public().String() + `', 1, '100.64.0.1', 'fd7a::1', 1, 1)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	s := open(t, path)
	defer s.Close()
	err = s.Read(context.Background(), func(tx store.Tx) error {
		ns, err := tx.Nodes()
		if err != nil || len(ns) != 1 || !ns[0].Expired.IsZero() || !ns[0].LoggedOut {
			t.Errorf("nodes after migration: %+v %v", ns, err)
		}
		h, err := tx.PasswordHash(1)
		if err != nil || h != "" {
			t.Errorf("password of an old user: %q %v", h, err)
		}
		if u, err := tx.UserByID(1); err != nil || u.OIDCSubject != "" || u.Groups != nil {
			t.Errorf("an old user after migration: %+v %v; want no provider identity, no groups", u, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
