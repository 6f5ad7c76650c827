package key

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadOrCreateFile: a missing file gets a new private key (mode 0600), read back the
// same next time; a file not holding a key is an error naming it.
func TestLoadOrCreateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	k1, err := LoadOrCreateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", fi, err)
	}
	if k2, err := LoadOrCreateFile(path); err != nil || k2 != k1 {
		t.Fatalf("read back: %v; want the key made first", err)
	}
	os.WriteFile(path, []byte("nonsense\n"), 0o600)
	if _, err := LoadOrCreateFile(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("a bad key file: %v; want an error naming it", err)
	}
}
