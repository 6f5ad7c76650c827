package sqlitestore

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"tsconnect/control/store"
)

// TestKeyDescriptionMigration opens a database of schema version 3 holding an auth key: after
// the upgrade the old key reads with no description, and a new key keeps the one it was
// written with across reopening.
func TestKeyDescriptionMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v3.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE schema_version (version INTEGER NOT NULL)`, `INSERT INTO schema_version VALUES (3)`,
		migrations[0], migrations[1], migrations[2],
		`INSERT INTO users (email, role, created) VALUES ('a@example.com', 'admin', 1)`,
		`INSERT INTO auth_keys (hash, prefix, user_id, created) VALUES (x'01', 'old', 1, 1)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	ctx := context.Background()
	s := open(t, path)
	err = s.Update(ctx, func(tx store.Tx) error {
		old, err := tx.AuthKeyByPrefix("old")
		if err != nil || old.Description != "" || old.UserID != 1 {
			t.Errorf("the old key after the upgrade: %+v %v; want it, with no description", old, err)
		}
		k := store.AuthKey{Hash: []byte{2}, Prefix: "new", UserID: 1, Description: "CI runners — build farm", Created: old.Created}
		return tx.InsertAuthKey(&k)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = open(t, path)
	defer s.Close()
	err = s.Read(ctx, func(tx store.Tx) error {
		ks, err := tx.AuthKeys()
		if err != nil || len(ks) != 2 || ks[0].Description != "" || ks[1].Description != "CI runners — build farm" {
			t.Errorf("keys after reopening: %+v %v; want the old one without and the new one with its description", ks, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
