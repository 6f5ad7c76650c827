package sqlitestore

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"tsconnect/control/store"
)

// TestStatementCache: queries run unprepared the first time, prepared afterwards, with the
// same results and the same errors (a unique violation is still ErrConflict).
func TestStatementCache(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "c.db"))
	defer s.Close()
	ctx := context.Background()
	addUser := func(email string) error {
		return s.Update(ctx, func(tx store.Tx) error {
			return tx.InsertUser(&store.User{Email: email, Role: store.RoleMember})
		})
	}
	readUser := func(email string) (store.User, error) {
		var u store.User
		err := s.Read(ctx, func(tx store.Tx) (err error) {
			u, err = tx.UserByEmail(email)
			return err
		})
		return u, err
	}
	if err := addUser("a@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := readUser("a@example.com"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); s.ws.Prepared() == 0 || s.rs.Prepared() == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("statements never prepared: writer %d, readers %d", s.ws.Prepared(), s.rs.Prepared())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := addUser("b@example.com"); err != nil {
		t.Fatalf("insert through a prepared statement: %v", err)
	}
	if err := addUser("a@example.com"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a taken email through a prepared statement: %v, want ErrConflict", err)
	}
	u, err := readUser("b@example.com")
	if err != nil || u.Email != "b@example.com" || u.ID == 0 {
		t.Fatalf("read back through a prepared statement: %+v, %v", u, err)
	}
	if _, err := readUser("c@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a missing user through a prepared statement: %v, want ErrNotFound", err)
	}
}
