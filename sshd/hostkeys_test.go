package sshd

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestHostKeysStable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	first, err := LoadOrCreateHostKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	second, err := LoadOrCreateHostKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	wantTypes := []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256}
	if len(first) != 2 || len(second) != 2 {
		t.Fatalf("got %d and %d keys, want 2", len(first), len(second))
	}
	for i := range first {
		if got := first[i].PublicKey().Type(); got != wantTypes[i] {
			t.Errorf("key %d is %s, want %s", i, got, wantTypes[i])
		}
		if !bytes.Equal(first[i].PublicKey().Marshal(), second[i].PublicKey().Marshal()) {
			t.Errorf("key %d changed between loads", i)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 2 {
		t.Errorf("%d files in the key directory, want 2", len(ents))
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", e.Name(), fi.Mode().Perm())
		}
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("key directory has mode %v, want 0700", fi.Mode().Perm())
	}
	for i, line := range AuthorizedKeys(first) {
		pk, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil || len(rest) != 0 || !bytes.Equal(pk.Marshal(), first[i].PublicKey().Marshal()) {
			t.Errorf("authorized_keys line %q does not round-trip: %v", line, err)
		}
	}
}

func TestHostKeyCorruptIsAnError(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ssh_host_ed25519_key"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateHostKeys(dir); err == nil {
		t.Error("a corrupt host key was silently replaced or accepted")
	}
}
