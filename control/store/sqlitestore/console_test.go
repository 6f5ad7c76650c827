package sqlitestore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

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

func TestSignInsAuditAndExpiry(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "c.db"))
	defer s.Close()
	ctx := context.Background()
	t0 := time.Unix(1_800_000_000, 0).UTC()
	hash := bytes.Repeat([]byte{7}, 32)
	u := store.User{Email: "a@example.com", Role: store.RoleAdmin, Created: t0}
	n := store.Node{Name: "n", MachineKey: key.NewPrivate().Public(), NodeKey: key.NewPrivate().Public(),
		IPv4: netip.MustParseAddr("100.64.0.1"), IPv6: netip.MustParseAddr("fd7a::1"), Created: t0}
	err := s.Update(ctx, func(tx store.Tx) error {
		if err := tx.InsertUser(&u); err != nil {
			return err
		}
		if err := tx.SetPasswordHash(u.ID, "$argon2id$x"); err != nil {
			return err
		}
		if err := tx.InsertSignIn(&store.SignIn{Hash: hash, UserID: u.ID, Created: t0, LastSeen: t0}); err != nil {
			return err
		}
		if err := tx.InsertAuthEvent(&store.AuthEvent{Time: t0, UserID: u.ID, Email: u.Email, Method: "password", Kind: "signin", OK: true}); err != nil {
			return err
		}
		if err := tx.SetLastAuth(u.ID, "password", t0); err != nil {
			return err
		}
		n.UserID = 0
		n.LoggedOut, n.Expired = true, t0
		return tx.InsertNode(&n)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(tx store.Tx) error {
		ws, err := tx.SignIn(hash)
		if err != nil || ws.UserID != u.ID || !ws.LastSeen.Equal(t0) {
			t.Errorf("session %+v %v", ws, err)
		}
		if got, _ := tx.NodeByID(n.ID); !got.Expired.Equal(t0) {
			t.Errorf("expired %v, want %v", got.Expired, t0)
		}
		n.LoggedOut = false // registered again
		if err := tx.UpdateNode(&n); err != nil {
			return err
		}
		if got, _ := tx.NodeByID(n.ID); !got.Expired.IsZero() {
			t.Errorf("a node logged in again is still expired: %v", got.Expired)
		}
		if k, err := tx.DeleteIdleSignIns(t0.Add(time.Second)); k != 1 || err != nil {
			t.Errorf("idle sessions deleted: %d %v", k, err)
		}
		if err := tx.InsertSignIn(&store.SignIn{Hash: hash, UserID: u.ID, Created: t0, LastSeen: t0}); err != nil {
			return err
		}
		return tx.DeleteUser(u.ID) // its sessions and last-auth go with it; the audit stays
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Read(ctx, func(tx store.Tx) error {
		if _, err := tx.SignIn(hash); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("session of a deleted user: %v", err)
		}
		if es, err := tx.AuthEvents(0, 10); err != nil || len(es) != 1 || es[0].Email != "a@example.com" || !es[0].OK {
			t.Errorf("audit after deleting the user: %+v %v", es, err)
		}
		return nil
	})
}

// TestUserOIDC: users bound to a provider identity are found by it, no two users hold one,
// and their groups round-trip.
func TestUserOIDC(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "c.db"))
	defer s.Close()
	ctx := context.Background()
	const iss = "https://idp.example"
	a := store.User{Email: "a@example.com", Role: store.RoleMember, Created: time.Now(), OIDCIssuer: iss, OIDCSubject: "sub-a", Groups: []string{"eng"}}
	b := store.User{Email: "b@example.com", Role: store.RoleMember, Created: time.Now()}
	err := s.Update(ctx, func(tx store.Tx) error {
		if err := tx.InsertUser(&a); err != nil {
			return err
		}
		if err := tx.InsertUser(&b); err != nil {
			return err
		}
		if err := tx.SetUserOIDC(b.ID, iss, "sub-a"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("binding a second user to sub-a: %v, want ErrConflict", err)
		}
		if _, err := tx.UserByOIDC(iss, ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("user of an empty subject: %v, want ErrNotFound", err)
		}
		if err := tx.SetUserOIDC(b.ID, iss, "sub-b"); err != nil {
			return err
		}
		return tx.SetUserGroups(b.ID, []string{"ops", "sales"})
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Read(ctx, func(tx store.Tx) error {
		got, err := tx.UserByOIDC(iss, "sub-a")
		if err != nil || got.ID != a.ID || len(got.Groups) != 1 || got.Groups[0] != "eng" {
			t.Errorf("user of sub-a: %+v %v", got, err)
		}
		got, err = tx.UserByOIDC(iss, "sub-b")
		if err != nil || got.ID != b.ID || got.OIDCIssuer != iss || len(got.Groups) != 2 || got.Groups[1] != "sales" {
			t.Errorf("user of sub-b: %+v %v", got, err)
		}
		if _, err := tx.UserByOIDC("https://other.example", "sub-a"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("sub-a at another issuer: %v, want ErrNotFound", err)
		}
		return nil
	})
}
