package recorder

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// State is where a recording stands.
type State string

// Recording states. Every state but Recording is final.
const (
	Recording State = "recording" // being written now
	Ended     State = "ended"     // the upload ended normally
	Broken    State = "broken"    // the upload stopped midway (connection lost, bad line)
	DiskFull  State = "diskFull"  // cut: the storage ran out of space
	OverQuota State = "overQuota" // cut: its source's quota was used up
	Unknown   State = "unknown"   // found unfinished when the store opened (the recorder stopped)
)

// Meta describes one recording, as ID.json holds it and the API lists it.
type Meta struct {
	ID         string    `json:"id"`
	Source     string    `json:"source"`     // the uploading node (the SSH server's), for quotas
	TargetNode string    `json:"targetNode"` // the node logged in to (= Source for an agent's upload)
	SrcUser    string    `json:"srcUser"`    // who logged in (the SSH client's user)
	SrcNode    string    `json:"srcNode"`    // from which node
	LocalUser  string    `json:"localUser"`  // as which local account
	Width      int       `json:"width"`
	Height     int       `json:"height"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end,omitzero"`
	ExitCode   *int      `json:"exitCode,omitempty"` // the session's, when the uploader sent it
	State      State     `json:"state"`
	Error      string    `json:"error,omitempty"` // why a recording broke
	Size       int64     `json:"size"`            // bytes of ID.cast
}

// saveMeta replaces dir/ID.json with m, atomically (a crash leaves the old or the new file).
func saveMeta(dir string, m *Meta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, m.ID+".json.tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, m.ID+".json"))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("recorder: saving metadata of %s: %w", m.ID, err)
	}
	return nil
}

// loadMeta reads dir/ID.json.
func loadMeta(dir, id string) (*Meta, error) {
	b, err := os.ReadFile(filepath.Join(dir, id+".json"))
	if err != nil {
		return nil, err
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("recorder: metadata of %s: %w", id, err)
	}
	if m.ID != id {
		return nil, fmt.Errorf("recorder: metadata of %s names %q", id, m.ID)
	}
	return &m, nil
}
