//go:build linux

package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"tsconnect/console/api"
	"tsconnect/control"
	"tsconnect/internal/eventually"
)

// TestLoginAuditAgentKilled: a real agent process (`tsconnect up --ssh`) decides two
// OpenSSH logins while control is down and is killed with SIGKILL before it could report
// them; started again on its state dir once control is back, it reports them, and the
// export holds each decision exactly once. Killed again and started on the journal as it was
// before the records were sent (a crash between sending and compacting), it sends them
// again: control still holds each once.
func TestLoginAuditAgentKilled(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatalf("needs root to log in as root (uid %d)", os.Geteuid())
	}
	addr := freePort(t)
	startRelay(t, addr)
	tn := startTestNet(t, func(c *control.Config) { c.DERPMap, c.EmbeddedDERP = standaloneRelayMap(addr), false }, ownNodesPolicy)
	client := tn.startAgent("client")
	state := t.TempDir()
	sock := filepath.Join(state, "agent.sock")
	journal := filepath.Join(state, "ssh-audit.jsonl")
	key := tn.authKey(control.AuthKeyOptions{Reusable: true})
	up := func() *proc {
		p := startProc(t, "--socket", sock, "up", "--ssh", "--hostname", "srv", "--login-server", tn.url, "--auth-key", key, "--state", state)
		waitStatus(t, sock, "srv")
		return p
	}
	kill := func(p *proc) {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	}
	srv := up()
	o := newOpenSSH(t, tn, client, "client", "srv")
	if out, stderr, code := o.ssh("root@srv", "echo before"); code != 0 || out != "before\n" {
		t.Fatalf("root@srv: exit %d, %q, stderr %q", code, out, stderr)
	}
	export := func() []api.AuditEvent { return sshAuditExport(t, tn.dir) }
	eventually.True(t, "the journal to be empty once control stored the first login's records", func() bool { b, err := os.ReadFile(journal); return err == nil && len(b) == 0 })

	tn.cs.Stop()
	for _, cmd := range []string{"echo one", "echo two"} {
		if out, stderr, code := o.ssh("root@srv", cmd); code != 0 || out != strings.TrimPrefix(cmd, "echo ")+"\n" {
			t.Fatalf("root@srv %q while control is down: exit %d, %q, stderr %q", cmd, code, out, stderr)
		}
	}
	var queued []byte
	eventually.True(t, "the outage's 2 accepts and 2 ends in the journal", func() bool {
		queued, _ = os.ReadFile(journal)
		return bytes.Count(queued, []byte("\n")) == 4
	})
	if fi, err := os.Stat(journal); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("journal %v, %v; want mode 0600", fi, err)
	}
	kill(srv)
	tn.cs.Start(nil)
	tn.srv = tn.cs.Control
	tn.serveAdmin(t)
	srv = up()

	// Each decision once: 3 accepts and 3 ends, the outage's decided before it was reported.
	check := func(when string) {
		t.Helper()
		var ssh []api.AuditEvent
		eventually.True(t, "the export to hold 6 SSH events "+when, func() bool { ssh = export(); return len(ssh) >= 6 })
		time.Sleep(500 * time.Millisecond) // a record stored twice would come with its first
		ssh = export()
		kinds := func(k string) int {
			return len(slices.DeleteFunc(slices.Clone(ssh), func(e api.AuditEvent) bool { return e.Kind != k }))
		}
		if len(ssh) != 6 || kinds("ssh-accept") != 3 || kinds("ssh-end") != 3 {
			t.Fatalf("%s: %d SSH events %+v; want 3 accepts and 3 ends, each once", when, len(ssh), ssh)
		}
		// Each login (its client's address and port) has one accept and one end.
		seen := map[string]int{}
		for _, e := range ssh {
			if e.SSH == nil || e.SSH.DstName != "srv" || e.SSH.SrcName != "client" || e.User != tn.owner.Email {
				t.Fatalf("%s: %+v %+v; want the owner on client to srv", when, e, e.SSH)
			}
			seen[e.SSH.Remote+" "+e.Kind]++
		}
		if len(seen) != 6 {
			t.Errorf("%s: the logins' decisions %v; want an accept and an end for each of 3", when, seen)
		}
	}
	check("after the agent was killed and started again")
	eventually.True(t, "the journal to be compacted", func() bool { b, err := os.ReadFile(journal); return err == nil && len(b) == 0 })

	// A crash after sending, before compacting: the journal still has what was sent.
	kill(srv)
	if err := os.WriteFile(journal, queued, 0o600); err != nil {
		t.Fatal(err)
	}
	up()
	eventually.True(t, "the records sent again to be compacted", func() bool { b, err := os.ReadFile(journal); return err == nil && len(b) == 0 })
	check("after the same records were sent again")
}
