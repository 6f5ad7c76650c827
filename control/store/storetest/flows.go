package storetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"tsconnect/control/store"
	"tsconnect/key"
)

// checksAndLogins: held checks and pending logins are counted, decided once, listed newest
// first and swept when expired.
func checksAndLogins(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	ctx := context.Background()
	t0 := time.Unix(1_800_000_000, 0).UTC()
	h := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	mk := key.NewPrivate().Public()
	err := s.Update(ctx, func(tx store.Tx) error {
		for i, c := range []store.Check{
			{Hash: h(1), SrcNode: 1, DstNode: 2, UserID: 7, LocalUser: "root", Info: []byte(`{"a":1}`), Created: t0, Expires: t0.Add(time.Minute)},
			{Hash: h(2), SrcNode: 1, DstNode: 2, UserID: 7, LocalUser: "root", Info: []byte(`{}`), Created: t0.Add(time.Second), Expires: t0.Add(time.Hour)},
			{Hash: h(3), SrcNode: 3, DstNode: 2, UserID: 7, LocalUser: "root", Info: []byte(`{}`), Created: t0, Expires: t0.Add(time.Hour)},
		} {
			if err := tx.InsertCheck(&c); err != nil {
				return err
			}
			if i == 0 {
				if err := tx.InsertCheck(&c); !errors.Is(err, store.ErrConflict) {
					t.Errorf("a second check with the same hash: %v, want ErrConflict", err)
				}
			}
		}
		for _, l := range []store.Login{
			{Hash: h(4), MachineKey: mk, NodeKey: key.NewPrivate().Public(), Source: "192.0.2.1", Request: []byte(`{"r":1}`), Created: t0, Expires: t0.Add(time.Minute)},
			{Hash: h(5), MachineKey: mk, NodeKey: key.NewPrivate().Public(), Source: "192.0.2.2", Request: []byte(`{}`), Created: t0.Add(time.Second), Expires: t0.Add(time.Hour)},
		} {
			if err := tx.InsertLogin(&l); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(tx store.Tx) error {
		bySrc, byDst, total, err := tx.CountChecks(1, 2)
		if err != nil || bySrc != 2 || byDst != 3 || total != 3 {
			t.Errorf("CountChecks(1, 2) = %d, %d, %d, %v; want 2, 3, 3", bySrc, byDst, total, err)
		}
		cs, err := tx.ChecksFor(2, 1, "root")
		if err != nil || len(cs) != 2 || !bytes.Equal(cs[0].Hash, h(2)) || string(cs[1].Info) != `{"a":1}` {
			t.Errorf("ChecksFor(2, 1, root) = %+v, %v; want checks 2 then 1", cs, err)
		}
		if err := tx.DecideCheck(h(1), "accept", "ok"); err != nil {
			return err
		}
		if err := tx.DecideCheck(h(1), "reject", "late"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deciding a decided check: %v, want ErrNotFound", err)
		}
		if c, err := tx.CheckByHash(h(1)); err != nil || c.Verdict != "accept" || c.Message != "ok" || !c.Expires.Equal(t0.Add(time.Minute)) {
			t.Errorf("decided check: %+v %v", c, err)
		}
		bySource, total, err := tx.CountLogins("192.0.2.1")
		if err != nil || bySource != 1 || total != 2 {
			t.Errorf("CountLogins = %d, %d, %v; want 1, 2", bySource, total, err)
		}
		ls, err := tx.LoginsByMachineKey(mk)
		if err != nil || len(ls) != 2 || !bytes.Equal(ls[0].Hash, h(5)) || ls[1].MachineKey != mk || string(ls[1].Request) != `{"r":1}` {
			t.Errorf("LoginsByMachineKey = %+v, %v; want logins 5 then 4", ls, err)
		}
		if n, err := tx.DeleteExpiredFlows(t0.Add(time.Minute)); err != nil || n != 2 {
			t.Errorf("DeleteExpiredFlows = %d, %v; want check 1 and login 4", n, err)
		}
		if err := tx.DeleteLogin(h(4)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleting a swept login: %v, want ErrNotFound", err)
		}
		return tx.DeleteCheck(h(1)) // already gone: no error
	})
	if err != nil {
		t.Fatal(err)
	}
}

// apiTokens: tokens are found by hash, revoked, touched, and go with their user.
func apiTokens(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	ctx := context.Background()
	t0 := time.Unix(1_800_000_000, 0).UTC()
	u := store.User{Email: "a@example.com", Role: store.RoleMember, Created: t0}
	tk := store.APIToken{Hash: bytes.Repeat([]byte{9}, 32), Scopes: []string{"nodes:read", "keys:write"}, Description: "CI", Created: t0, Expires: t0.Add(time.Hour)}
	err := s.Update(ctx, func(tx store.Tx) error {
		if err := tx.InsertUser(&u); err != nil {
			return err
		}
		tk.UserID = u.ID
		if err := tx.InsertAPIToken(&tk); err != nil {
			return err
		}
		if err := tx.RevokeAPIToken(tk.ID); err != nil {
			return err
		}
		if err := tx.RevokeAPIToken(tk.ID + 100); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("revoking a missing token: %v, want ErrNotFound", err)
		}
		return tx.TouchAPIToken(tk.ID, t0.Add(time.Minute))
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(tx store.Tx) error {
		got, err := tx.APITokenByHash(tk.Hash)
		if err != nil || got.ID != tk.ID || !got.Revoked || len(got.Scopes) != 2 || got.Scopes[1] != "keys:write" ||
			!got.LastUsed.Equal(t0.Add(time.Minute)) || got.Description != "CI" {
			t.Errorf("token read back: %+v %v", got, err)
		}
		return tx.DeleteUser(u.ID)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Read(ctx, func(tx store.Tx) error {
		if ts, err := tx.APITokens(); err != nil || len(ts) != 0 {
			t.Errorf("tokens after deleting their user: %+v %v", ts, err)
		}
		return nil
	})
}
