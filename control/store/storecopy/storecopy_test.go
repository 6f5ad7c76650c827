package storecopy

import (
	"bytes"
	"context"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"tsconnect/control/store"
	"tsconnect/control/store/pgstore"
	"tsconnect/control/store/sqlitestore"
	"tsconnect/control/store/sqlstore"
	"tsconnect/internal/testpg"
	"tsconnect/key"
)

// fill writes a small network through the store's API: users (one with OIDC and a
// password), keys, live, deleted and tagged nodes, settings (policy versions live there),
// audit events, a sign-in, an API token, a check, a login and a lease.
func fill(t *testing.T, s store.Store) {
	t0 := time.Unix(1_800_000_000, 123456789).UTC()
	err := s.Update(context.Background(), func(tx store.Tx) error {
		a := store.User{Email: "a@example.com", DisplayName: "A", Role: store.RoleAdmin, Created: t0, OIDCIssuer: "https://idp", OIDCSubject: "s", Groups: []string{"eng"}}
		b := store.User{Email: "b@example.com", Role: store.RoleMember, Created: t0}
		for _, u := range []*store.User{&a, &b} {
			if err := tx.InsertUser(u); err != nil {
				return err
			}
		}
		if err := tx.SetPasswordHash(b.ID, "$argon2id$v=19$x"); err != nil {
			return err
		}
		for _, k := range []store.AuthKey{
			{Hash: []byte{1, 2, 3}, Prefix: "k1", UserID: a.ID, Reusable: true, Created: t0, Description: "fleet"},
			{Hash: []byte{4}, Prefix: "k2", Tags: []string{"tag:ci"}, Ephemeral: true, Used: true, UsedAt: t0, Expires: t0.Add(time.Hour), Created: t0},
			{Hash: []byte{5}, Prefix: "k3", UserID: b.ID, Revoked: true, Created: t0},
		} {
			if err := tx.InsertAuthKey(&k); err != nil {
				return err
			}
		}
		for i := range 5 {
			n := store.Node{Name: "n" + string(rune('a'+i)), MachineKey: key.NewPrivate().Public(), NodeKey: key.NewPrivate().Public(),
				UserID: a.ID, IPv4: netip.AddrFrom4([4]byte{100, 64, 0, byte(i + 1)}), IPv6: netip.MustParseAddr("fd7a::" + string(rune('1'+i))),
				Created: t0, LastSeen: t0.Add(time.Duration(i) * time.Second)}
			switch i {
			case 1:
				n.UserID, n.Tags, n.Ephemeral = 0, []string{"tag:ci"}, true
			case 2:
				n.Hostinfo = []byte(`{"os":"linux"}`)
				n.LoggedOut, n.Expired = true, t0
			case 3:
				n.Deleted = t0
			}
			if err := tx.InsertNode(&n); err != nil {
				return err
			}
		}
		for _, kv := range [][2]string{{"policy.1", `{"acls":[]}`}, {"policy.current", "1"}, {"server.key", "privkey:abc"}} {
			if err := tx.SetSetting(kv[0], kv[1]); err != nil {
				return err
			}
		}
		for i := range 3 {
			e := store.AuthEvent{Time: t0.Add(time.Duration(i)), UserID: a.ID, Email: a.Email, Method: "password", Kind: "signin", OK: i != 1, Detail: "d"}
			if err := tx.InsertAuthEvent(&e); err != nil {
				return err
			}
		}
		if err := tx.SetLastAuth(a.ID, "oidc", t0); err != nil {
			return err
		}
		if err := tx.InsertSignIn(&store.SignIn{Hash: bytes.Repeat([]byte{7}, 32), UserID: a.ID, Created: t0, LastSeen: t0}); err != nil {
			return err
		}
		if err := tx.InsertAPIToken(&store.APIToken{Hash: bytes.Repeat([]byte{8}, 32), UserID: b.ID, Scopes: []string{"read"}, Created: t0, Expires: t0.Add(time.Hour)}); err != nil {
			return err
		}
		if err := tx.InsertCheck(&store.Check{Hash: bytes.Repeat([]byte{9}, 32), SrcNode: 1, DstNode: 3, UserID: a.ID, LocalUser: "root", Info: []byte(`{}`), Created: t0, Expires: t0.Add(time.Hour)}); err != nil {
			return err
		}
		if err := tx.InsertLogin(&store.Login{Hash: bytes.Repeat([]byte{6}, 32), MachineKey: key.NewPrivate().Public(), NodeKey: key.NewPrivate().Public(), Source: "192.0.2.1", Request: []byte(`{}`), Created: t0, Expires: t0.Add(time.Hour)}); err != nil {
			return err
		}
		_, err := tx.TryLease("sweep", "replica-1", t0, time.Minute)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// dump reads back everything a network holds through the store's API.
func dump(t *testing.T, s store.Store) map[string]any {
	out := map[string]any{}
	err := s.Read(context.Background(), func(tx store.Tx) error {
		us, err := tx.Users()
		if err != nil {
			return err
		}
		out["users"] = us
		var pw []string
		for _, u := range us {
			h, err := tx.PasswordHash(u.ID)
			if err != nil {
				return err
			}
			at, m, err := tx.LastAuth(u.ID)
			pw = append(pw, h+"|"+m+"|"+at.String()+"|"+errString(err))
		}
		out["passwords+lastauth"] = pw
		if out["keys"], err = tx.AuthKeys(); err != nil {
			return err
		}
		var nodes []store.Node
		for id := int64(1); id <= 6; id++ { // deleted nodes too
			n, err := tx.NodeByID(id)
			if err == nil {
				nodes = append(nodes, n)
			}
		}
		out["nodes"] = nodes
		var settings []string
		for _, k := range []string{"policy.1", "policy.current", "server.key"} {
			v, err := tx.Setting(k)
			settings = append(settings, v+"|"+errString(err))
		}
		out["settings"] = settings
		if out["events"], err = tx.AuthEvents(0, 100); err != nil {
			return err
		}
		si, err := tx.SignIn(bytes.Repeat([]byte{7}, 32))
		out["signin"] = []any{si, errString(err)}
		if out["tokens"], err = tx.APITokens(); err != nil {
			return err
		}
		c, err := tx.CheckByHash(bytes.Repeat([]byte{9}, 32))
		out["check"] = []any{c, errString(err)}
		l, err := tx.LoginByHash(bytes.Repeat([]byte{6}, 32))
		out["login"] = []any{l, errString(err)}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestCopySQLiteToPostgres moves a network from SQLite to PostgreSQL and compares, record
// by record through the store API, everything it held; the copy is refused into a database
// that holds a network, and new rows in the copy get fresh IDs.
func TestCopySQLiteToPostgres(t *testing.T) {
	ctx := context.Background()
	src, err := sqlitestore.Open(filepath.Join(t.TempDir(), "control.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fill(t, src)
	dst, err := pgstore.Open(ctx, testpg.Start(t).NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	counts, err := Copy(ctx, src.DB(), dst.DB())
	if err != nil {
		t.Fatal(err)
	}
	if counts["nodes"] != 5 || counts["users"] != 2 || counts["auth_events"] != 3 || counts["auth_keys"] != 3 || counts["leases"] != 1 {
		t.Errorf("rows copied: %v", counts)
	}
	want, got := dump(t, src), dump(t, dst)
	for k := range want {
		if !reflect.DeepEqual(want[k], got[k]) {
			t.Errorf("%s after the copy:\n got %+v\nwant %+v", k, got[k], want[k])
		}
	}
	if _, err := Copy(ctx, src.DB(), dst.DB()); err == nil || !strings.Contains(err.Error(), "already") {
		t.Fatalf("a second copy into the same database: %v; want refused", err)
	}
	err = dst.Update(ctx, func(tx store.Tx) error {
		u := store.User{Email: "c@example.com", Role: store.RoleMember, Created: time.Now()}
		if err := tx.InsertUser(&u); err != nil {
			return err
		}
		if u.ID != 3 {
			t.Errorf("a new user after the copy has ID %d, want 3", u.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("a write after the copy: %v", err)
	}
}

// TestTablesAreTheSchemas: the copy's table list names every table of the schema.
func TestTablesAreTheSchemas(t *testing.T) {
	s, err := sqlitestore.Open(filepath.Join(t.TempDir(), "control.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows, err := s.DB().Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('schema_version', 'sqlite_sequence') ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var have []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		have = append(have, n)
	}
	want := slices.Sorted(slices.Values(sqlstore.Tables))
	if !slices.Equal(have, want) {
		t.Fatalf("schema tables %v, sqlstore.Tables %v", have, want)
	}
}
