package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// errNoBackups: the store cannot copy itself (a database server has its own tools).
var errNoBackups = errors.New("backups are of SQLite state only, and this control keeps its state on a database server (--store postgres://…): back that database up with its own tools, e.g. pg_dump --format=custom --file=FILE DATABASE")

// backupStore is a store that can copy itself consistently while it serves (SQLite's VACUUM INTO).
type backupStore interface {
	BackupTo(ctx context.Context, path string) error
}

// Backup makes a consistent copy of the whole state (every user, key, node, policy version,
// pending check and login, and the server's private keys) while the server goes on serving,
// and hands it to fn with its size. The copy is a SQLite database that `tsconnect control
// restore` installs; it is made in the state directory (mode 0600) and removed when fn returns.
func (s *Server) Backup(ctx context.Context, fn func(r io.Reader, size int64) error) error {
	bs, ok := s.st.(backupStore)
	if !ok {
		return fmt.Errorf("control: %w", errNoBackups)
	}
	tmp, err := os.MkdirTemp(s.cfg.StateDir, "backup-")
	if err != nil {
		return fmt.Errorf("control: backup: %w", err)
	}
	defer os.RemoveAll(tmp)
	path := filepath.Join(tmp, DBFile)
	if err := bs.BackupTo(ctx, path); err != nil {
		return fmt.Errorf("control: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("control: backup: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("control: backup: %w", err)
	}
	s.logf("control: backup made (%d bytes)", fi.Size())
	return fn(f, fi.Size())
}
