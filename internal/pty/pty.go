// Package pty opens pseudo-terminal pairs and sets their size: the agent's SSH sessions
// (sshd) and the test-only reference web terminal (e2e/tools/webpty) use it.
package pty
