package console

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"tsconnect/console/api"
	"tsconnect/control"
	"tsconnect/control/store/sqlitestore"
	"tsconnect/internal/eventually"
)

// TestBackupSocketOnly: the admin socket gets a whole, intact copy of the database; an
// admin's console sign-in and an admin's API token with every scope get 403.
func TestBackupSocketOnly(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.user("root@example.com", control.RoleAdmin, "correct horse battery")
	sock := e.socket()
	var buf bytes.Buffer
	n, err := sock.Backup(ctx, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || int64(buf.Len()) != n {
		t.Fatalf("backup: %d bytes read, %d reported", buf.Len(), n)
	}
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	os.WriteFile(copyPath, buf.Bytes(), 0o600)
	if _, err := sqlitestore.CheckBackup(ctx, copyPath); err != nil {
		t.Fatalf("the socket's backup is not an intact database: %v", err)
	}
	// The handler removes its temporary copy once the answer is out.
	eventually.True(t, "the backup's temporary copy to leave the state dir", func() bool {
		entries, _ := filepath.Glob(filepath.Join(e.dir, "backup-*"))
		return len(entries) == 0
	})

	secret, _, err := sock.CreateAPIToken(ctx, api.CreateAPITokenRequest{User: "root@example.com", Scopes: []string{"read", "nodes", "keys", "policy", "users"}})
	if err != nil {
		t.Fatal(err)
	}
	e.bearer(secret, "GET", "/api/v1/backup", nil).want(t, http.StatusForbidden, api.CodeForbidden)
	c := e.client().mustLogin("root@example.com", "correct horse battery")
	c.do("GET", "/api/v1/backup", nil).want(t, http.StatusForbidden, api.CodeForbidden)
}
