package control

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestAuthKeyDescription: a key keeps the description it was made with (trimmed) across a
// restart and lists it; a description that is too long or not one line of text is refused,
// naming the problem, and no key is made.
func TestAuthKeyDescription(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	u := e.user("alice@example.com")
	_, info, err := e.s.CreateAuthKey(ctx, AuthKeyOptions{User: u.ID, Description: "  laptops of the support team\t"})
	if err != nil {
		t.Fatal(err)
	}
	if info.Description != "laptops of the support team" {
		t.Errorf("created key's description %q", info.Description)
	}
	plain, _, err := e.s.CreateAuthKey(ctx, AuthKeyOptions{User: u.ID})
	if err != nil || plain == "" {
		t.Fatal(err)
	}
	e.restart()

	for _, bad := range []struct{ desc, says string }{
		{"first line\nsecond line", "U+000A"},
		{"right-to-left \u202e override", "U+202E"},
		{strings.Repeat("x", MaxKeyDescription+1), "at most 256"},
		{"bad \xff byte", "UTF-8"},
	} {
		_, _, err := e.s.CreateAuthKey(ctx, AuthKeyOptions{User: u.ID, Description: bad.desc})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), bad.says) {
			t.Errorf("description %q: %v; want ErrInvalid saying %q", bad.desc, err, bad.says)
		}
	}
	ks, err := e.s.AuthKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 2 || ks[0].ID != info.ID || ks[0].Description != "laptops of the support team" || ks[1].Description != "" {
		t.Fatalf("keys after a restart: %+v; want the described key and the plain one only", ks)
	}
}
