//go:build linux

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"tsconnect/internal/testpg"
)

// TestBackupRefusedOnPostgres: `tsconnect control backup` through a control whose store is
// PostgreSQL fails, saying why and to use pg_dump, and leaves no file behind.
func TestBackupRefusedOnPostgres(t *testing.T) {
	db := testpg.Start(t).NewDatabase(t)
	r := startReplicas(t, db, 1)[0]
	file := filepath.Join(t.TempDir(), "control-backup.db")
	out, err := exec.Command(tsconnectBin, "control", "backup", "--state", r.dir, file).CombinedOutput()
	if err == nil {
		t.Fatalf("control backup of a PostgreSQL store succeeded:\n%s", out)
	}
	t.Logf("tsconnect control backup on PostgreSQL: %s", strings.TrimSpace(string(out)))
	for _, want := range []string{"SQLite", "postgres", "pg_dump"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("control backup of a PostgreSQL store says %q; want it to name %q", out, want)
		}
	}
	for _, f := range []string{file, file + ".part"} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("the refused backup left %s behind", f)
		}
	}
}
