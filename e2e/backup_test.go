package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"tsconnect/console/api"
	"tsconnect/internal/eventually"
	"tsconnect/node"
)

// TestBackupRestore: `tsconnect control backup` copies a running control's state while nodes
// register; `control restore` installs it into a new state directory; control started there
// on the same address knows every node and key of the copy, the agent reconnects as the same
// node, and a new browser-like node reaches it over SSH.
func TestBackupRestore(t *testing.T) {
	dir, adir := t.TempDir(), t.TempDir()
	sock := filepath.Join(adir, "agent.sock")
	addr := freePort(t)
	url := "http://" + addr
	ctrl := startProc(t, "control", "--listen", addr, "--state", dir)
	waitHTTP(t, url+"/")
	cli(t, "users", "create", "--state", dir, "alice@example.com")
	cliOwnNodesPolicy(t, dir)
	agentKey := lastLine(cli(t, "keys", "create", "--state", dir, "--user", "alice@example.com"))
	startProc(t, "--socket", sock, "up", "--ssh", "--hostname", "server", "--login-server", url, "--auth-key", agentKey, "--state", adir)
	waitStatus(t, sock, "server")

	// Nodes keep registering (each a new node, then gone offline) while the backup runs.
	many := lastLine(cli(t, "keys", "create", "--state", dir, "--user", "alice@example.com", "--reusable", "--description", "for the registering loop"))
	var registered atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			n, err := node.New(node.Options{ControlURL: url, AuthKey: many, Hostname: "loop"})
			if err != nil {
				t.Error(err)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			err = n.Start(ctx)
			cancel()
			n.Close()
			if err != nil {
				t.Errorf("registration %d during the backup: %v", i, err)
				return
			}
			registered.Add(1)
		}
	}()
	eventually.True(t, "a few registrations", func() bool { return registered.Load() >= 3 })
	before := registered.Load()
	file := filepath.Join(t.TempDir(), "control-backup.db")
	out := cli(t, "control", "backup", "--state", dir, file)
	after := registered.Load()
	close(stop)
	wg.Wait()
	if !strings.Contains(out, file) {
		t.Errorf("control backup printed %q; want the file named", out)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, mode %v; want 0600 (it holds private keys)", err, fi.Mode().Perm())
	}
	if out, err := exec.Command(tsconnectBin, "control", "backup", "--state", dir, file).CombinedOutput(); err == nil || !strings.Contains(string(out), "exists") {
		t.Errorf("a backup onto an existing file: err=%v, %s", err, out)
	}

	// A restore into the state of a running control is refused.
	if out, err := exec.Command(tsconnectBin, "control", "restore", "--state", dir, file).CombinedOutput(); err == nil || !strings.Contains(string(out), "running") {
		t.Errorf("restore onto a running control: err=%v, %s", err, out)
	}
	ctrl.cmd.Process.Signal(syscall.SIGTERM)
	ctrl.cmd.Wait()

	restored := filepath.Join(t.TempDir(), "restored")
	cli(t, "control", "restore", "--state", restored, file)
	if out, err := exec.Command(tsconnectBin, "control", "restore", "--state", restored, file).CombinedOutput(); err == nil || !strings.Contains(string(out), "--force") {
		t.Errorf("a second restore onto a state without --force: err=%v, %s", err, out)
	}
	startProc(t, "control", "--listen", addr, "--state", restored)
	waitHTTP(t, url+"/")

	var nodes []api.Node
	if err := json.Unmarshal([]byte(cli(t, "nodes", "--state", restored, "--json")), &nodes); err != nil {
		t.Fatal(err)
	}
	loops := 0
	for _, nd := range nodes {
		if strings.HasPrefix(nd.Name, "loop") {
			loops++
		}
	}
	if loops < int(before) || loops > int(after)+1 {
		t.Errorf("the restored state has %d of the loop's nodes; %d had registered when the backup started, %d when it ended", loops, before, after)
	}
	keys := cli(t, "keys", "list", "--state", restored)
	if !strings.Contains(keys, "for the registering loop") || strings.Count(keys, "\n") < 2 {
		t.Errorf("keys after the restore:\n%s", keys)
	}
	// The agent comes back as the same node (its key is in the copy), online.
	eventually.True(t, "the agent online on the restored control", func() bool {
		var nodes []api.Node
		json.Unmarshal([]byte(cli(t, "nodes", "--state", restored, "--json")), &nodes)
		for _, nd := range nodes {
			if nd.Name == "server" && nd.Online {
				return true
			}
		}
		return false
	})
	if n := strings.Count(cli(t, "nodes", "--state", restored), "server"); n != 1 {
		t.Errorf("%d nodes named server after the restore; want the one", n)
	}
	clientKey := lastLine(cli(t, "keys", "create", "--state", restored, "--user", "alice@example.com", "--ephemeral"))
	n := startNodeAt(t, url, clientKey, "laptop")
	cl := sshDial(t, n, "server")
	if out, code := run(t, cl, "echo restored", nil); string(out) != "restored\n" || code != 0 {
		t.Fatalf("SSH to the agent after the restore: %q exit %d", out, code)
	}
}
