package control

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestPasswordHashPHC(t *testing.T) {
	h := hashPassword("correct horse")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=47104,t=1,p=1$") || strings.Count(h, "$") != 5 {
		t.Fatalf("hash %q is not an argon2id PHC string", h)
	}
	if h == hashPassword("correct horse") {
		t.Error("two hashes of one password are equal: no salt")
	}
	for pw, want := range map[string]bool{"correct horse": true, "correct horsE": false, "": false} {
		if ok, err := verifyPassword(h, pw); ok != want || err != nil {
			t.Errorf("verify %q = %v %v, want %v", pw, ok, err, want)
		}
	}
	for _, bad := range []string{"", "$2a$10$bcrypt", "$argon2id$v=19$m=0,t=1,p=1$AAAA$AAAA", "$argon2i$v=19$m=8,t=1,p=1$AAAA$AAAAAAAAAAAAAAAAAAAAAA"} {
		if _, err := verifyPassword(bad, "x"); err == nil {
			t.Errorf("verify against %q: no error", bad)
		}
	}
}

func TestCheckPassword(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	u := e.user("ada@example.com")
	if _, err := e.s.CheckPassword(ctx, "ada@example.com", "anything at all"); !errors.Is(err, ErrBadLogin) {
		t.Errorf("no password set: %v", err)
	}
	if err := e.s.SetPassword(ctx, u.ID, "short"); !errors.Is(err, ErrInvalid) {
		t.Errorf("short password: %v", err)
	}
	if err := e.s.SetPassword(ctx, u.ID, "correct horse"); err != nil {
		t.Fatal(err)
	}
	e.restart()
	if got, err := e.s.CheckPassword(ctx, " ADA@example.com", "correct horse"); err != nil || got.ID != u.ID {
		t.Errorf("right password after a restart: %+v %v", got, err)
	}
	for _, c := range [][2]string{{"ada@example.com", "wrong horse"}, {"bob@example.com", "correct horse"}} {
		if _, err := e.s.CheckPassword(ctx, c[0], c[1]); !errors.Is(err, ErrBadLogin) {
			t.Errorf("%v: %v, want ErrBadLogin", c, err)
		}
	}
}
