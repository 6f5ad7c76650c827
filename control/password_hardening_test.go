package control

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestConsoleSessionOutlivesNoAbsoluteLifetime: a console session used every few hours
// still ends SignInLifetime after it began.
func TestConsoleSessionOutlivesNoAbsoluteLifetime(t *testing.T) {
	var clock atomic.Int64
	start := time.Now()
	clock.Store(start.UnixNano())
	e := newEnv(t, func(c *Config) { c.Now = func() time.Time { return time.Unix(0, clock.Load()) } })
	ctx := context.Background()
	u := e.user("ada@example.com")
	token, _, err := e.s.CreateSignIn(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	for at := time.Duration(0); at < SignInLifetime; at += 6 * time.Hour {
		clock.Store(start.Add(at).UnixNano())
		if _, err := e.s.SignInByToken(ctx, token); err != nil {
			t.Fatalf("session used every 6h ended after %v: %v", at, err)
		}
	}
	clock.Store(start.Add(SignInLifetime + time.Minute).UnixNano())
	if _, err := e.s.SignInByToken(ctx, token); !errors.Is(err, ErrNotFound) {
		t.Fatalf("session %v after its start: %v, want ErrNotFound", SignInLifetime+time.Minute, err)
	}
}

// TestPasswordResetEndsStolenSessions: setting a user's password (an admin's reset or their
// own change) ends every console session they had; a wrong current password changes nothing.
func TestPasswordResetEndsStolenSessions(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	u := e.user("ada@example.com")
	if err := e.s.SetPassword(ctx, u.ID, "first password"); err != nil {
		t.Fatal(err)
	}
	stolen, _, _ := e.s.CreateSignIn(ctx, u.ID)
	if err := e.s.ChangePassword(ctx, u.ID, "not the password", "second password"); !errors.Is(err, ErrBadLogin) {
		t.Fatalf("change with a wrong current password: %v, want ErrBadLogin", err)
	}
	if _, err := e.s.SignInByToken(ctx, stolen); err != nil {
		t.Fatalf("a refused change ended the session: %v", err)
	}
	if err := e.s.ChangePassword(ctx, u.ID, "first password", "second password"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.SignInByToken(ctx, stolen); !errors.Is(err, ErrNotFound) {
		t.Fatalf("session after a password change: %v, want ErrNotFound", err)
	}
	if _, err := e.s.CheckPassword(ctx, u.Email, "second password"); err != nil {
		t.Fatalf("new password: %v", err)
	}
	stolen, _, _ = e.s.CreateSignIn(ctx, u.ID)
	if _, err := e.s.SetPasswordByEmail(ctx, "ADA@example.com", "third password"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.SignInByToken(ctx, stolen); !errors.Is(err, ErrNotFound) {
		t.Fatalf("session after an admin's reset: %v, want ErrNotFound", err)
	}
	if _, err := e.s.SetPasswordByEmail(ctx, "nobody@example.com", "third password"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("reset of an unknown user: %v, want ErrNotFound", err)
	}
}

// TestAuditLogFieldsFromStrangersAreBounded: a 1 MiB email and detail are stored cut to
// their bounds and escaped.
func TestAuditLogFieldsFromStrangersAreBounded(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	huge := strings.Repeat("\x1b[31m", 1<<20/5)
	if err := e.s.RecordAuthAttempt(ctx, huge+"@x", AuthPassword, AuthSignIn, false, "from "+huge); err != nil {
		t.Fatal(err)
	}
	ev, err := e.s.AuditLog(ctx, 0, 1)
	if err != nil || len(ev) != 1 {
		t.Fatalf("audit log %v %v", ev, err)
	}
	if n := len(ev[0].User); n > 4*MaxAuditEmail+32 || strings.Contains(ev[0].User, "\x1b") {
		t.Errorf("stored email of %d bytes (%q…), want at most 4×%d escaped", n, ev[0].User[:min(n, 40)], MaxAuditEmail)
	}
	if n := len(ev[0].Detail); n > 4*MaxAuditDetail+32 || strings.Contains(ev[0].Detail, "\x1b") {
		t.Errorf("stored detail of %d bytes, want at most 4×%d escaped", n, MaxAuditDetail)
	}
}

// TestSilentSignInDoesNotCountAsNow: an identity provider's sign-in counts at its
// auth_time; one without auth_time is logged but proves nothing.
func TestSilentSignInDoesNotCountAsNow(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	u := e.user("ada@example.com")
	old := time.Now().Add(-30 * time.Hour).UTC().Truncate(time.Second)
	if err := e.s.RecordAuthAt(ctx, u.ID, AuthOIDC, AuthSignIn, old, "sso"); err != nil {
		t.Fatal(err)
	}
	if at, _, _ := e.s.LastAuth(ctx, u.ID); !at.Equal(old) {
		t.Fatalf("last auth %v, want the provider's auth_time %v", at, old)
	}
	if err := e.s.RecordAuthAt(ctx, u.ID, AuthOIDC, AuthSignIn, time.Time{}, "sso without auth_time"); err != nil {
		t.Fatal(err)
	}
	if at, _, _ := e.s.LastAuth(ctx, u.ID); !at.Equal(old) {
		t.Fatalf("last auth %v after a sign-in without auth_time, want still %v", at, old)
	}
	if ev, _ := e.s.AuditLog(ctx, 0, 1); len(ev) != 1 || !ev[0].OK {
		t.Fatalf("the sign-in without auth_time is not in the log: %+v", ev)
	}
}

// TestPasswordCheckBurstHashesAtMostMaxConcurrent: 40 checks at once never run more than
// MaxConcurrentHashes argon2id hashes at a time.
func TestPasswordCheckBurstHashesAtMostMaxConcurrent(t *testing.T) {
	var cur, peak atomic.Int64
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			withHashSlot(context.Background(), func() {
				n := cur.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				verifyPassword(dummyHash, "guess")
				cur.Add(-1)
			})
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > MaxConcurrentHashes || p == 0 {
		t.Fatalf("peak concurrent hashes %d, want 1..%d", p, MaxConcurrentHashes)
	}
}
