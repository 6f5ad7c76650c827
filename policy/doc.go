// Package policy parses, validates and compiles the HuJSON tailnet policy file.
// It is pure (no I/O), builds for GOOS=js, and yields per-node packet filters and SSH rules.
package policy
