//go:build !linux

package recorder

// freeSpace is unknown here: only ENOSPC stops a recording.
func freeSpace(dir string) (int64, bool) { return 0, false }
