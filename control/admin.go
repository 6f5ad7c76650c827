package control

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// AdminSocket is the admin API's unix socket inside the state directory.
const AdminSocket = "admin.sock"

// ListenAdmin listens on the admin socket DIR/admin.sock, mode 0600, replacing a stale one.
// The console serves the admin API on it to the local admin (console.Console.ServeAdmin).
func ListenAdmin(stateDir string) (net.Listener, error) {
	p := filepath.Join(stateDir, AdminSocket)
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control: admin socket: %w", err)
	}
	ln, err := net.Listen("unix", p)
	if err != nil {
		return nil, fmt.Errorf("control: admin socket: %w", err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control: admin socket: %w", err)
	}
	return ln, nil
}
