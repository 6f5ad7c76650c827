package sqlitestore

import (
	"path/filepath"
	"testing"

	"tsconnect/control/store"
	"tsconnect/control/store/storetest"
)

// TestConformance runs the backends' shared suite on a fresh file per test.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, filepath.Join(t.TempDir(), "c.db")) })
}

// TestSingleUseKeyRace: two stores on one file race registrations with one single-use key.
func TestSingleUseKeyRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	a, b := open(t, path), open(t, path)
	defer a.Close()
	defer b.Close()
	storetest.SingleUseKeyRace(t, a, b)
}

// TestLeases: two stores on one file share leases on background work.
func TestLeases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	a, b := open(t, path), open(t, path)
	defer a.Close()
	defer b.Close()
	storetest.Leases(t, a, b)
}
