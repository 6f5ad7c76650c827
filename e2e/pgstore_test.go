package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/crypto/ssh"

	"tsconnect/console/api"
	"tsconnect/internal/testpg"
)

// TestControlOnPostgres: control keeps the network in PostgreSQL (--store): a node registers,
// another SSHes to it, control is killed and started again with an empty --state, and the
// nodes, keys and policy are all still there (and the session goes on).
func TestControlOnPostgres(t *testing.T) {
	db := testpg.Start(t).NewDatabase(t)
	dir := t.TempDir()
	addr := freePort(t)
	url := "http://" + addr
	ctrl := startProc(t, "control", "--listen", addr, "--state", dir, "--store", db)
	waitHTTP(t, url+"/")
	if _, err := os.Stat(filepath.Join(dir, "control.db")); !os.IsNotExist(err) {
		t.Fatalf("control on PostgreSQL made a SQLite file in --state (%v)", err)
	}
	cl := sshNetwork(t, dir, url)

	ctrl.cmd.Process.Signal(syscall.SIGKILL)
	ctrl.cmd.Wait()
	dir2 := t.TempDir() // nothing of the network is in --state: a fresh one will do
	startProc(t, "control", "--listen", addr, "--state", dir2, "--store", db)
	waitHTTP(t, url+"/")
	if out, code := run(t, cl, "echo after", nil); string(out) != "after\n" || code != 0 {
		t.Fatalf("after control was killed and restarted on PostgreSQL: %q exit %d", out, code)
	}
	wantNetwork(t, dir2, url)
}

// TestControlMigrateToPostgres: a network on SQLite moves with `tsconnect control migrate`;
// control started on PostgreSQL (with an empty --state) serves the same nodes, keys and policy.
func TestControlMigrateToPostgres(t *testing.T) {
	db := testpg.Start(t).NewDatabase(t)
	dir := t.TempDir()
	addr := freePort(t)
	url := "http://" + addr
	ctrl := startProc(t, "control", "--listen", addr, "--state", dir)
	waitHTTP(t, url+"/")
	cl := sshNetwork(t, dir, url)

	out, err := runTsconnect("control", "migrate", "--from", dir, "--to", db)
	if err == nil || !strings.Contains(out, "stop it first") {
		t.Fatalf("migrate while control runs: %v\n%s; want refused", err, out)
	}
	ctrl.cmd.Process.Signal(syscall.SIGTERM)
	ctrl.cmd.Wait()
	out = cli(t, "control", "migrate", "--from", dir, "--to", db)
	if !strings.Contains(out, "nodes: 2 rows") || !strings.Contains(out, "every row verified") {
		t.Fatalf("migrate printed:\n%s", out)
	}
	dir2 := t.TempDir()
	startProc(t, "control", "--listen", addr, "--state", dir2, "--store", db)
	waitHTTP(t, url+"/")
	if out, code := run(t, cl, "echo moved", nil); string(out) != "moved\n" || code != 0 {
		t.Fatalf("after the move to PostgreSQL: %q exit %d", out, code)
	}
	wantNetwork(t, dir2, url)
}

// runTsconnect runs tsconnect to completion and returns its combined output and error.
func runTsconnect(args ...string) (string, error) {
	out, err := exec.Command(tsconnectBin, args...).CombinedOutput()
	return string(out), err
}

// sshNetwork makes, through the control in dir at url, user alice with the own-nodes policy,
// an SSH agent "server" and a node "laptop" (ephemeral key), and returns laptop's SSH
// connection to server, checked with one command.
func sshNetwork(t *testing.T, dir, url string) *ssh.Client {
	t.Helper()
	adir := t.TempDir()
	sock := filepath.Join(adir, "agent.sock")
	cli(t, "users", "create", "--state", dir, "alice@example.com")
	cliOwnNodesPolicy(t, dir)
	agentKey := lastLine(cli(t, "keys", "create", "--state", dir, "--user", "alice@example.com"))
	startProc(t, "--socket", sock, "up", "--ssh", "--hostname", "server", "--login-server", url, "--auth-key", agentKey, "--state", adir)
	waitStatus(t, sock, "server")
	n := startNodeAt(t, url, lastLine(cli(t, "keys", "create", "--state", dir, "--user", "alice@example.com", "--ephemeral")), "laptop")
	cl := sshDial(t, n, "server")
	if out, code := run(t, cl, "echo before", nil); string(out) != "before\n" || code != 0 {
		t.Fatalf("SSH from laptop to server: %q exit %d", out, code)
	}
	return cl
}

// wantNetwork checks that the control in dir at url still has sshNetwork's nodes and keys,
// and that a third node registered now SSHes to server: the own-nodes policy is still in
// force (the default policy would hold the login for a check).
func wantNetwork(t *testing.T, dir, url string) {
	t.Helper()
	var nodes []api.Node
	if err := json.Unmarshal([]byte(cli(t, "nodes", "--state", dir, "--json")), &nodes); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, nd := range nodes {
		names = append(names, nd.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"laptop", "server"}) {
		t.Fatalf("nodes = %v; want laptop and server", names)
	}
	if keys := cli(t, "keys", "list", "--state", dir); strings.Count(keys, "used=true") != 2 {
		t.Fatalf("keys:\n%s", keys)
	}
	n3 := startNodeAt(t, url, lastLine(cli(t, "keys", "create", "--state", dir, "--user", "alice@example.com", "--ephemeral")), "tablet")
	if out, code := run(t, sshDial(t, n3, "server"), "echo third", nil); string(out) != "third\n" || code != 0 {
		t.Fatalf("a node registered now: %q exit %d", out, code)
	}
}
