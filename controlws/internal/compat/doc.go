// Package compat holds the tests that run every frozen control client (controlws/internal/v1client, …)
// against the current control server; it has no code of its own (docs/versions.md).
package compat
