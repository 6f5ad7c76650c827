// Package storetest is the conformance suite of control/store: the behaviour every backend
// must have, run unchanged by sqlitestore's and pgstore's tests.
package storetest

import (
	"testing"

	"tsconnect/control/store"
)

// Run runs the suite; open must return a new, empty, migrated store (closed by the suite).
func Run(t *testing.T, open func(*testing.T) store.Store) {
	for _, c := range []struct {
		name string
		fn   func(*testing.T, func(*testing.T) store.Store)
	}{
		{"RowsAndErrors", rowsAndErrors},
		{"SignInsAuditAndExpiry", signInsAuditAndExpiry},
		{"UserOIDC", userOIDC},
		{"ChecksAndLogins", checksAndLogins},
		{"APITokens", apiTokens},
		{"LoginFailures", loginFailures},
		{"KeyExpiry", keyExpiry},
		{"SeenAndUnguarded", seenAndUnguarded},
		{"SeenInBatches", seenInBatches},
		{"AuditLog", auditLog},
		{"AuditRecordOnce", auditRecordOnce},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.fn(t, func(t *testing.T) store.Store {
				s := open(t)
				t.Cleanup(func() { s.Close() })
				return s
			})
		})
	}
}
