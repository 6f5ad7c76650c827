package control_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"tsconnect/control"
)

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func wantErr(t *testing.T, err, kind error, text string) {
	t.Helper()
	if !errors.Is(err, kind) || !strings.Contains(err.Error(), text) {
		t.Fatalf("got %v; want %v saying %q", err, kind, text)
	}
}

// TestAPITokenLifecycle: a token is shown once and stored as its SHA-256 only (read from
// the SQLite file), works until it expires (control's clock), is revoked or its user is
// deleted, survives a restart, and is bounded (form, scopes, role, count, expiry).
func TestAPITokenLifecycle(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	open := func() *control.Server {
		s, err := control.New(control.Config{StateDir: dir, ServerURL: "http://127.0.0.1:8080", Logf: t.Logf, Now: clock.now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	defer func() { s.Close() }()
	ctx := context.Background()
	ada, err := s.CreateUser(ctx, "ada@example.com", control.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	bob, _ := s.CreateUser(ctx, "bob@example.com", control.RoleMember)

	secret, tok, err := s.CreateAPIToken(ctx, control.APITokenOptions{User: bob.ID, Scopes: []string{"read", "keys", "read"}, Expiry: time.Hour, Description: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) != control.APITokenLen || !strings.HasPrefix(secret, control.APITokenPrefix) || strings.Join(tok.Scopes, ",") != "keys,read" {
		t.Fatalf("token %q %+v", secret, tok)
	}
	got, err := s.APITokenBySecret(ctx, secret)
	if err != nil || got.ID != tok.ID || got.User.Email != "bob@example.com" || !got.HasScope("keys") || got.HasScope("nodes") {
		t.Fatalf("lookup: %+v %v", got, err)
	}

	// At rest: the SHA-256, never the secret (the database and its write-ahead log).
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, control.DBFile)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	var hash []byte
	var scopes string
	if err := db.QueryRow(`SELECT hash, scopes FROM api_tokens WHERE id = ?`, tok.ID).Scan(&hash, &scopes); err != nil {
		t.Fatal(err)
	}
	db.Close()
	want := sha256.Sum256([]byte(secret))
	if !bytes.Equal(hash, want[:]) || scopes != "keys,read" {
		t.Fatalf("stored hash %x scopes %q; want the SHA-256 of the secret", hash, scopes)
	}
	for _, f := range []string{control.DBFile, control.DBFile + "-wal"} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		if bytes.Contains(b, []byte(secret)) || bytes.Contains(b, []byte(secret[len(control.APITokenPrefix):])) {
			t.Fatalf("%s holds the token's secret", f)
		}
	}

	// Bounds, before any lookup or write.
	_, err = s.APITokenBySecret(ctx, secret+"x")
	wantErr(t, err, control.ErrNotFound, "not an API token")
	_, err = s.APITokenBySecret(ctx, control.APITokenPrefix+strings.Repeat("A", control.APITokenLen-len(control.APITokenPrefix)))
	wantErr(t, err, control.ErrNotFound, "unknown API token")
	_, _, err = s.CreateAPIToken(ctx, control.APITokenOptions{User: bob.ID, Scopes: []string{"policy"}})
	wantErr(t, err, control.ErrForbidden, "is a member")
	_, _, err = s.CreateAPIToken(ctx, control.APITokenOptions{User: bob.ID, Scopes: []string{"root"}})
	wantErr(t, err, control.ErrInvalid, `unknown API token scope "root"`)
	_, _, err = s.CreateAPIToken(ctx, control.APITokenOptions{User: bob.ID})
	wantErr(t, err, control.ErrInvalid, "at least one scope")
	_, _, err = s.CreateAPIToken(ctx, control.APITokenOptions{User: bob.ID, Scopes: []string{"read"}, Expiry: 400 * 24 * time.Hour})
	wantErr(t, err, control.ErrInvalid, "expiry")
	_, _, err = s.CreateAPIToken(ctx, control.APITokenOptions{User: 999, Scopes: []string{"read"}})
	wantErr(t, err, control.ErrNotFound, "no user 999")
	for i := 1; i < control.MaxAPITokensPerUser; i++ {
		if _, _, err := s.CreateAPIToken(ctx, control.APITokenOptions{User: bob.ID, Scopes: []string{"read"}}); err != nil {
			t.Fatalf("token %d of bob: %v", i+1, err)
		}
	}
	_, _, err = s.CreateAPIToken(ctx, control.APITokenOptions{User: bob.ID, Scopes: []string{"read"}})
	wantErr(t, err, control.ErrInvalid, "live API tokens")

	// A restart keeps the token.
	s.Close()
	s = open()
	if got, err := s.APITokenBySecret(ctx, secret); err != nil || got.ID != tok.ID {
		t.Fatalf("after a restart: %+v %v", got, err)
	}

	// Expiry, by control's clock: an hour later it is refused.
	clock.add(time.Hour)
	_, err = s.APITokenBySecret(ctx, secret)
	wantErr(t, err, control.ErrNotFound, "expired")

	// Revoked.
	adaSecret, adaTok, err := s.CreateAPIToken(ctx, control.APITokenOptions{User: ada.ID, Scopes: []string{"policy", "users"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAPIToken(ctx, adaTok.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.APITokenBySecret(ctx, adaSecret)
	wantErr(t, err, control.ErrNotFound, "revoked")
	wantErr(t, s.RevokeAPIToken(ctx, 9999), control.ErrNotFound, "no API token 9999")

	// The owner deleted: every token of theirs is gone.
	cySecret, _, err := s.CreateAPIToken(ctx, control.APITokenOptions{User: bob.ID, Scopes: []string{"read"}})
	if err != nil {
		t.Fatal(err) // bob's first tokens expired: room for one more
	}
	if _, err := s.DeleteUser(ctx, "bob@example.com"); err != nil {
		t.Fatal(err)
	}
	_, err = s.APITokenBySecret(ctx, cySecret)
	wantErr(t, err, control.ErrNotFound, "unknown API token")
	if ts, err := s.APITokens(ctx, 0); err != nil || len(ts) != 1 || ts[0].ID != adaTok.ID || !ts[0].Revoked {
		t.Fatalf("tokens after deleting bob: %+v %v; want ada's revoked one only", ts, err)
	}
}
