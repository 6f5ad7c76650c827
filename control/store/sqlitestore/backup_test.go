package sqlitestore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"tsconnect/control/store"
)

// TestBackupWhileWriting takes a backup while a writer commits rows one by one: the copy opens,
// passes CheckBackup, holds a prefix of the commits (none torn), and is mode 0600.
func TestBackupWhileWriting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "control.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var written atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var once sync.Once
	halt := func() { once.Do(func() { close(stop); wg.Wait() }) }
	defer halt()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			err := s.Update(ctx, func(tx store.Tx) error {
				return tx.SetSetting(fmt.Sprintf("test-%d", i), "value")
			})
			if err != nil {
				t.Error(err)
				return
			}
			written.Add(1)
		}
	}()
	for written.Load() < 50 {
		runtime.Gosched()
	}
	backup := filepath.Join(dir, "backup.db")
	before := written.Load()
	if err := s.BackupTo(ctx, backup); err != nil {
		t.Fatal(err)
	}
	after := written.Load()
	halt()

	fi, err := os.Stat(backup)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %o, want 0600", fi.Mode().Perm())
	}
	if _, err := CheckBackup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	b, err := Open(backup)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var n int64
	for i := 0; ; i++ {
		var v string
		err := b.Read(ctx, func(tx store.Tx) error {
			var err error
			v, err = tx.Setting(fmt.Sprintf("test-%d", i))
			return err
		})
		if err != nil || v == "" {
			break
		}
		n++
	}
	if n < before || n > after+1 {
		t.Errorf("the backup holds the first %d commits; %d were committed before it started and %d when it ended", n, before, after)
	}
	if err := s.BackupTo(ctx, backup); err == nil {
		t.Error("BackupTo overwrote an existing file")
	}
}

// TestCheckBackupRefuses: a file that is not a database, a truncated copy.
func TestCheckBackupRefuses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.db")
	os.WriteFile(junk, []byte("this is not a database, only text long enough to look like a header......"), 0o600)
	if _, err := CheckBackup(ctx, junk); err == nil {
		t.Error("CheckBackup accepted a text file")
	}
	s, err := Open(filepath.Join(dir, "control.db"))
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.db")
	if err := s.BackupTo(ctx, good); err != nil {
		t.Fatal(err)
	}
	s.Close()
	data, _ := os.ReadFile(good)
	cut := filepath.Join(dir, "cut.db")
	os.WriteFile(cut, data[:len(data)/2], 0o600)
	if _, err := CheckBackup(ctx, cut); err == nil {
		t.Error("CheckBackup accepted a truncated copy")
	}
	if v, err := CheckBackup(ctx, good); err != nil || v != len(migrations) {
		t.Errorf("CheckBackup(good) = %d, %v; want %d", v, err, len(migrations))
	}
}
