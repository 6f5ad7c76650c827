package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"tsconnect/console/api"
	"tsconnect/internal/testpg"
)

// TestControlOnPostgres: control keeps the network in PostgreSQL (--store): a node registers,
// another SSHes to it, control is killed and started again with an empty --state, and the
// nodes, keys and policy are all still there (and the session goes on).
func TestControlOnPostgres(t *testing.T) {
	db := testpg.Start(t).NewDatabase(t)
	dir, adir := t.TempDir(), t.TempDir()
	sock := filepath.Join(adir, "agent.sock")
	addr := freePort(t)
	url := "http://" + addr
	ctrl := startProc(t, "control", "--listen", addr, "--state", dir, "--store", db)
	waitHTTP(t, url+"/")
	if _, err := os.Stat(filepath.Join(dir, "control.db")); !os.IsNotExist(err) {
		t.Fatalf("control on PostgreSQL made a SQLite file in --state (%v)", err)
	}

	cli(t, "users", "create", "--state", dir, "alice@example.com")
	cliOwnNodesPolicy(t, dir)
	agentKey := lastLine(cli(t, "keys", "create", "--state", dir, "--user", "alice@example.com"))
	startProc(t, "--socket", sock, "up", "--ssh", "--hostname", "server", "--login-server", url, "--auth-key", agentKey, "--state", adir)
	waitStatus(t, sock, "server")
	clientKey := lastLine(cli(t, "keys", "create", "--state", dir, "--user", "alice@example.com", "--ephemeral"))
	n := startNodeAt(t, url, clientKey, "laptop")
	cl := sshDial(t, n, "server")
	if out, code := run(t, cl, "echo on-postgres", nil); string(out) != "on-postgres\n" || code != 0 {
		t.Fatalf("SSH with control on PostgreSQL: %q exit %d", out, code)
	}

	ctrl.cmd.Process.Signal(syscall.SIGKILL)
	ctrl.cmd.Wait()
	dir2 := t.TempDir() // nothing of the network is in --state: a fresh one will do
	startProc(t, "control", "--listen", addr, "--state", dir2, "--store", db)
	waitHTTP(t, url+"/")

	if out, code := run(t, cl, "echo after", nil); string(out) != "after\n" || code != 0 {
		t.Fatalf("after control was killed and restarted on PostgreSQL: %q exit %d", out, code)
	}
	var nodes []api.Node
	if err := json.Unmarshal([]byte(cli(t, "nodes", "--state", dir2, "--json")), &nodes); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, nd := range nodes {
		names[nd.Name] = true
	}
	if len(nodes) != 2 || !names["server"] || !names["laptop"] {
		t.Fatalf("after SIGKILL and a restart on PostgreSQL, nodes = %+v; want server and laptop", nodes)
	}
	if keys := cli(t, "keys", "list", "--state", dir2); strings.Count(keys, "used=true") != 2 {
		t.Fatalf("keys after the restart:\n%s", keys)
	}
	// A third node registers after the restart and SSHes to the first: the own-nodes policy
	// survived too (the default policy would hold the login for a check).
	n3 := startNodeAt(t, url, lastLine(cli(t, "keys", "create", "--state", dir2, "--user", "alice@example.com", "--ephemeral")), "tablet")
	if out, code := run(t, sshDial(t, n3, "server"), "echo third", nil); string(out) != "third\n" || code != 0 {
		t.Fatalf("a node registered after the restart: %q exit %d", out, code)
	}
}
