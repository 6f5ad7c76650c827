package pgstore

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"

	"tsconnect/control/store"
	"tsconnect/control/store/storetest"
	"tsconnect/internal/testpg"
)

func open(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConformance runs the backends' shared suite on a fresh database per test of a real
// PostgreSQL server.
func TestConformance(t *testing.T) {
	srv := testpg.Start(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(context.Background(), srv.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestSingleUseKeyRace: two stores (two connection pools, as two replicas) race
// registrations with one single-use key; exactly one node registers.
func TestSingleUseKeyRace(t *testing.T) {
	url := testpg.Start(t).NewDatabase(t)
	storetest.SingleUseKeyRace(t, open(t, url), open(t, url))
}

// TestLeases: two stores (two pools) on one database share leases on background work.
func TestLeases(t *testing.T) {
	url := testpg.Start(t).NewDatabase(t)
	storetest.Leases(t, open(t, url), open(t, url))
}

// TestMigrateOnce: replicas opening one empty database together all succeed and leave one
// schema at the newest version; a database from a newer program is refused.
func TestMigrateOnce(t *testing.T) {
	url := testpg.Start(t).NewDatabase(t)
	var wg sync.WaitGroup
	stores := make([]*Store, 4)
	errs := make([]error, len(stores))
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = Open(context.Background(), url)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	var rows, v int
	db := stores[0].db
	if err := db.QueryRow(`SELECT count(*), max(version) FROM schema_version`).Scan(&rows, &v); err != nil || rows != 1 || v != len(dialect.Migrations()) {
		t.Fatalf("schema_version: %d rows, version %d (%v); want 1 row at %d", rows, v, err, len(dialect.Migrations()))
	}
	if _, err := db.Exec(`UPDATE schema_version SET version = 999`); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(context.Background(), url); err == nil || !strings.Contains(err.Error(), "newer") {
		if s != nil {
			s.Close()
		}
		t.Fatalf("opening a database from the future: %v; want refused as newer", err)
	}
}

// TestUpdateRetriesSerializationFailures: concurrent read-modify-write transactions on one
// row all land (each conflict is retried) and Read transactions refuse writes.
func TestUpdateRetriesSerializationFailures(t *testing.T) {
	url := testpg.Start(t).NewDatabase(t)
	a, b := open(t, url), open(t, url)
	ctx := context.Background()
	const each = 15
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []error
	for _, s := range []*Store{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				err := s.Update(ctx, func(tx store.Tx) error {
					v, err := tx.Setting("counter")
					if errors.Is(err, store.ErrNotFound) {
						v, err = "0", nil
					}
					if err != nil {
						return err
					}
					n, _ := strconv.Atoi(v)
					return tx.SetSetting("counter", strconv.Itoa(n+1))
				})
				if err != nil {
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	var got string
	a.Read(ctx, func(tx store.Tx) (err error) { got, err = tx.Setting("counter"); return err })
	if len(failures) > 0 || got != strconv.Itoa(4*each) {
		t.Fatalf("counter %s after %d increments, failures %v", got, 4*each, failures)
	}
	if err := a.Read(ctx, func(tx store.Tx) error { return tx.SetSetting("x", "y") }); err == nil {
		t.Fatal("write in a read transaction succeeded")
	}
}

// TestCustomPlans: the store plans every statement for its arguments unless the URL says
// otherwise (a generic plan made on an empty table scans it whole once it has grown).
func TestCustomPlans(t *testing.T) {
	url := testpg.Start(t).NewDatabase(t)
	mode := func(s *Store) string {
		var m string
		if err := s.db.QueryRow(`SHOW plan_cache_mode`).Scan(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := mode(open(t, url)); m != "force_custom_plan" {
		t.Fatalf("plan_cache_mode %q, want force_custom_plan", m)
	}
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	if m := mode(open(t, url+sep+"plan_cache_mode=auto")); m != "auto" {
		t.Fatalf("plan_cache_mode %q with the URL's plan_cache_mode=auto", m)
	}
}
