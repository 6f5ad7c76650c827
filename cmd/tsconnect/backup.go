package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"tsconnect/control"
	"tsconnect/control/adminclient"
	"tsconnect/control/store/sqlitestore"
)

func init() {
	adminCommand(&command{name: "control backup", usage: "[--state DIR] FILE",
		short: "copy the running control server's state into FILE (mode 0600)",
		long: `Writes a consistent copy of the running control server's whole state (users, keys,
nodes, policy versions, pending checks and logins, and the server's private keys) to FILE,
while it goes on serving; FILE is created mode 0600 and must not exist. Through the admin
socket DIR/admin.sock only. Bring it back with ` + "`tsconnect control restore`" + `.`},
		nil, func(ctx context.Context, ac *adminclient.Client, args []string) error {
			if err := wantArgs(args, 1, "FILE"); err != nil {
				return err
			}
			return backupTo(ctx, ac, args[0])
		})

	var dir string
	var force bool
	register(&command{name: "control restore", usage: "[--state DIR] [--force] FILE",
		short: "install a backup as the state of a stopped control server",
		long: `Checks that FILE is an intact control database this version can open (made by
` + "`tsconnect control backup`" + `), then installs it as DIR/control.db (mode 0600, owned
like DIR). Control must be stopped; an existing state is refused without --force (and
then kept beside it as control.db.before-restore-TIME). Start control on DIR afterwards:
its nodes reconnect with the keys they have.`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&dir, "state", filepath.Join(defaultStateRoot(), "control"), "the control server's state directory")
			fs.BoolVar(&force, "force", false, "replace an existing state (kept as control.db.before-restore-TIME)")
		},
		run: func(ctx context.Context, args []string) error {
			if err := wantArgs(args, 1, "FILE"); err != nil {
				return err
			}
			return restoreFrom(ctx, dir, args[0], force)
		}})
}

// backupTo downloads the backup into a temporary file beside path, checks it, and renames it.
func backupTo(ctx context.Context, ac *adminclient.Client, path string) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s exists: choose a new file", path)
	}
	tmp := path + ".part"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	n, err := ac.Backup(ctx, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		_, err = sqlitestore.CheckBackup(ctx, tmp)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	fmt.Printf("backup: %s, %d bytes\n", path, n)
	return nil
}

// restoreFrom installs the backup at src as dir's database.
func restoreFrom(ctx context.Context, dir, src string, force bool) error {
	ac := adminclient.New(dir)
	_, err := ac.Me(ctx)
	ac.Close()
	if err == nil {
		return fmt.Errorf("control is running on %s: stop it first", dir)
	}
	version, err := sqlitestore.CheckBackup(ctx, src)
	if err != nil {
		return err
	}
	st, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		err = os.MkdirAll(dir, 0o700)
		if err == nil {
			st, err = os.Stat(dir)
		}
	}
	if err != nil {
		return err
	}
	db := filepath.Join(dir, control.DBFile)
	if _, err := os.Stat(db); err == nil {
		if !force {
			return fmt.Errorf("%s holds a state already: pass --force to replace it (it is kept beside)", db)
		}
		keep := db + ".before-restore-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Rename(db, keep); err != nil {
			return err
		}
		fmt.Printf("restore: the old state is kept as %s\n", keep)
	}
	// The old database's WAL belongs to it, not to the copy.
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(db + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	tmp := db + ".restore"
	if err := copyFile(src, tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	// Owned like the state dir: control runs as its owner (the packaged unit: user tsconnect).
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
		if err := os.Chown(tmp, int(sys.Uid), int(sys.Gid)); err != nil {
			os.Remove(tmp)
			return err
		}
	}
	if err := os.Rename(tmp, db); err != nil {
		os.Remove(tmp)
		return err
	}
	fmt.Printf("restore: %s installed as %s (schema version %d); start control on %s\n", src, db, version, dir)
	return nil
}

// copyFile copies src to a new file dst, mode 0600, and syncs it.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
