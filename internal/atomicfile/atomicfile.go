// Package atomicfile writes a file so that a crash mid-write leaves either the old content
// or the new one, never a mix: a temporary file beside it, synced, then renamed over it.
package atomicfile

import (
	"os"
	"path/filepath"
)

// WriteFile writes data to path with mode 0600 through a temporary file and a rename.
func WriteFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
