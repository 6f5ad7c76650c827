package sqlitestore

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"tsconnect/control/store"
	"tsconnect/key"
)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSchemaAndPragmas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	s := open(t, path)
	s.Close()
	s = open(t, path) // migrating again is a no-op
	defer s.Close()
	var v int
	var mode string
	var fk, busy int
	if err := s.w.QueryRow(`SELECT version FROM schema_version`).Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("schema version %d (%v), want %d", v, err, len(migrations))
	}
	s.w.QueryRow(`PRAGMA journal_mode`).Scan(&mode)
	s.w.QueryRow(`PRAGMA foreign_keys`).Scan(&fk)
	s.w.QueryRow(`PRAGMA busy_timeout`).Scan(&busy)
	if mode != "wal" || fk != 1 || busy == 0 {
		t.Fatalf("journal_mode=%s foreign_keys=%d busy_timeout=%d", mode, fk, busy)
	}
	var rows int
	s.w.QueryRow(`SELECT count(*) FROM schema_version`).Scan(&rows)
	if rows != 1 {
		t.Fatalf("%d schema_version rows", rows)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	s := open(t, path)
	s.w.Exec(`UPDATE schema_version SET version = 999`)
	s.Close()
	if _, err := Open(path); err == nil {
		t.Fatal("opened a database from the future")
	}
}

func TestRowsAndErrors(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "c.db"))
	defer s.Close()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	u := store.User{Email: "a@example.com", DisplayName: "a", Role: store.RoleAdmin, Created: now}
	mk, nk := key.NewPrivate().Public(), key.NewPrivate().Public()
	n := store.Node{Name: "n", MachineKey: mk, NodeKey: nk, Tags: []string{"tag:x"},
		IPv4: netip.MustParseAddr("100.64.0.1"), IPv6: netip.MustParseAddr("fd00:1:2::6440:1"),
		Hostinfo: []byte(`{"os":"linux"}`), Created: now, LastSeen: now}
	err := s.Update(ctx, func(tx store.Tx) error {
		if err := tx.InsertUser(&u); err != nil {
			return err
		}
		n.UserID = u.ID
		if err := tx.InsertNode(&n); err != nil {
			return err
		}
		k := store.AuthKey{Hash: []byte{1, 2}, Prefix: "p", UserID: u.ID, Created: now}
		return tx.InsertAuthKey(&k)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(tx store.Tx) error {
		dup := u
		return tx.InsertUser(&dup)
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate email: %v, want ErrConflict", err)
	}
	err = s.Update(ctx, func(tx store.Tx) error {
		dup := n
		dup.MachineKey, dup.NodeKey = key.NewPrivate().Public(), key.NewPrivate().Public()
		return tx.InsertNode(&dup) // same name and addresses
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate node name: %v, want ErrConflict", err)
	}
	err = s.Update(ctx, func(tx store.Tx) error {
		k := store.AuthKey{Hash: []byte{1}, Prefix: "q", UserID: 999, Created: now}
		return tx.InsertAuthKey(&k)
	})
	if err == nil {
		t.Fatal("auth key of a missing user accepted: foreign keys off?")
	}
	err = s.Read(ctx, func(tx store.Tx) error {
		got, err := tx.NodeByNodeKey(nk)
		if err != nil {
			return err
		}
		if got.Name != "n" || got.MachineKey != mk || got.UserID != u.ID || got.Tags[0] != "tag:x" ||
			got.IPv6 != n.IPv6 || string(got.Hostinfo) != `{"os":"linux"}` || !got.Created.Equal(now) {
			t.Errorf("read back %+v", got)
		}
		if _, err := tx.UserByID(42); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("missing user: %v", err)
		}
		if used, _ := tx.AddrInUse(n.IPv6); !used {
			t.Error("IPv6 address not in use")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A deleted node frees its name, keys and addresses but stays findable by machine.
	err = s.Update(ctx, func(tx store.Tx) error {
		n.Deleted = now
		if err := tx.UpdateNode(&n); err != nil {
			return err
		}
		again := n
		again.ID, again.Deleted = 0, time.Time{}
		return tx.InsertNode(&again)
	})
	if err != nil {
		t.Fatalf("reusing a deleted node's name and keys: %v", err)
	}
	s.Read(ctx, func(tx store.Tx) error {
		got, err := tx.NodeByMachineKey(mk)
		if err != nil || !got.Deleted.IsZero() || got.ID == n.ID {
			t.Errorf("newest node of the machine: %+v %v", got, err)
		}
		return nil
	})
	// Read transactions cannot write.
	err = s.Read(ctx, func(tx store.Tx) error { return tx.SetSetting("x", "y") })
	if err == nil {
		t.Fatal("write in a read transaction succeeded")
	}
}
