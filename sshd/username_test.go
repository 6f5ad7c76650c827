//go:build linux

package sshd

import (
	"strings"
	"testing"
)

// TestNULInUserNameIsNotRootAtServer: even behind an Authorize that maps every name to
// itself, the server refuses a name with a NUL (or any other invalid name) before
// Authorize runs, and no session ever starts.
func TestNULInUserNameIsNotRootAtServer(t *testing.T) {
	asked := 0
	e := mappedEnv(t, func(*Login) { asked++ })
	for _, name := range []string{"root\x00x", "-root", "root/..", strings.Repeat("r", 300)} {
		var banner string
		if c, err := e.dial(t, name, &banner); err == nil {
			t.Fatalf("login as %q succeeded as %s", name, c.User())
		}
		if !strings.Contains(banner, "invalid SSH user name") {
			t.Errorf("login as %q: banner %q, want one saying the name is invalid", name, banner)
		}
	}
	if asked != 0 || e.logged("verdict=accept") {
		t.Fatalf("Authorize ran %d times for invalid names", asked)
	}
}

// TestAccountLookupMustMatchName: the account database's answer must carry the name asked
// for; libc reads "root\x00x" as "root", which is refused even if the validator were not there.
func TestAccountLookupMustMatchName(t *testing.T) {
	if a, err := resolveAccount("root\x00x"); err == nil {
		t.Fatalf("resolveAccount(root\\x00x) = %s (uid %d); want an error", a.Username, a.UID)
	}
	if _, err := lookupAccount("root\x00x"); err == nil || !strings.Contains(err.Error(), "NUL") {
		t.Fatalf("lookupAccount(root\\x00x) = %v; want an error naming the NUL", err)
	}
	if a, err := resolveAccount("root"); err != nil || a.UID != 0 {
		t.Fatalf("resolveAccount(root) = %v, %v", a, err)
	}
}
