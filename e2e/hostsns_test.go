package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// startInHosts runs tsconnect in a mount namespace of its own (the host's network) whose
// /etc/hosts is localhost and then hosts ("ADDR name" lines), with env added: how an agent
// reaches control.test, or a name that resolves to several replicas. The real /etc/hosts
// is never touched: the bind mount lives and dies with the namespace.
func startInHosts(t testing.TB, hosts string, env []string, args ...string) *proc {
	t.Helper()
	hf := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hf, []byte("127.0.0.1 localhost\n"+hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	sh := `mount --bind "$0" /etc/hosts && exec "$@"`
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", sh, hf, tsconnectBin}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	return startCmd(t, cmd, "tsconnect "+strings.Join(args, " "))
}
