package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"tsconnect/controlws"
	"tsconnect/key"
)

// State is where a Node is in its life.
type State string

// The states a Node reports through Options.OnState.
const (
	StateStarting   State = "starting"    // connecting to control
	StateNeedsLogin State = "needs-login" // no node yet and no usable auth key
	StateRunning    State = "running"     // registered, map applied
	StateKeyExpired State = "key-expired" // registered, but its node key expired: re-authenticate (Login)
	StateStopped    State = "stopped"     // closed, logged out or deleted
)

// identity is what a node must keep to stay the same node: its machine and node keys.
// With no state dir it lives in memory only (the browser's ephemeral node).
type identity struct {
	MachineKey key.Private `json:"machineKey"`
	NodeKey    key.Private `json:"nodeKey"`
	// Registered records that control has bound NodeKey to this machine.
	Registered bool `json:"registered"`
	// NextNodeKey, when set, is the key a re-authentication (Login) was moving to when the
	// node stopped: control may hold it or NodeKey. Start settles which (rotate.go).
	NextNodeKey key.Private `json:"nextNodeKey,omitzero"`
	// Control is what the node learned of the control replicas (controlurls.go).
	Control *controlState `json:"control,omitempty"`
}

const identityFile = "node.json"

// loadIdentity reads dir/node.json, or makes fresh keys when dir is "" or holds none.
func loadIdentity(dir string) (*identity, error) {
	if dir == "" {
		return &identity{MachineKey: key.NewPrivate(), NodeKey: key.NewPrivate()}, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, identityFile))
	if errors.Is(err, fs.ErrNotExist) {
		id := &identity{MachineKey: key.NewPrivate(), NodeKey: key.NewPrivate()}
		return id, id.save(dir)
	}
	if err != nil {
		return nil, err
	}
	var id identity
	if err := json.Unmarshal(b, &id); err != nil {
		return nil, fmt.Errorf("node: state file %s: %v", filepath.Join(dir, identityFile), err)
	}
	if id.MachineKey.IsZero() || id.NodeKey.IsZero() {
		return nil, fmt.Errorf("node: state file %s holds no keys", filepath.Join(dir, identityFile))
	}
	if id.Control != nil {
		if err := controlws.CheckControlURLs(id.Control.URLs); err != nil {
			return nil, fmt.Errorf("node: state file %s: %v", filepath.Join(dir, identityFile), err)
		}
	}
	return &id, nil
}

// save writes the identity atomically with mode 0600; a no-op without a state dir.
func (id *identity) save(dir string) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, identityFile+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, identityFile))
}
