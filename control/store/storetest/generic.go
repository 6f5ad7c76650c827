package storetest

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"tsconnect/control/store"
	"tsconnect/key"
)

func rowsAndErrors(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
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

func signInsAuditAndExpiry(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
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

// userOIDC: users bound to a provider identity are found by it, no two users hold one,
// and their groups round-trip.
func userOIDC(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
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
