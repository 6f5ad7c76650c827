//go:build linux

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"tsconnect/console/api"
	"tsconnect/control"
	"tsconnect/internal/eventually"
)

// auditPolicy lets the owner SSH to their own nodes as root or any other account, each
// session recorded on tag:rec.
const auditPolicy = `{
	"tagOwners": {"tag:rec": ["alice@example.com"]},
	"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
	"ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["root", "autogroup:nonroot"],
		"recorder": ["tag:rec"]}],
}`

// sshAuditExport is the SSH login events of `tsconnect audit export` on control's state dir.
func sshAuditExport(t *testing.T, dir string) []api.AuditEvent {
	t.Helper()
	var ssh []api.AuditEvent
	sc := bufio.NewScanner(strings.NewReader(cli(t, "audit", "export", "--state", dir)))
	for sc.Scan() {
		var e api.AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		if e.Method == "ssh" {
			ssh = append(ssh, e)
		}
	}
	return ssh
}

// TestLoginAuditOpenSSH: sessions from the real OpenSSH client to a real agent, one of them
// while control is down (the relay is standalone, so SSH goes on): `tsconnect audit export`
// shows each login's accept, its end (exit code, duration, the recording's ID as the
// recorder stores it) and a refused login with why, naming alice, the client and the
// target nodes and the local user; the login made during the outage arrives once control
// is back.
func TestLoginAuditOpenSSH(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatalf("needs root to log in as root (uid %d)", os.Geteuid())
	}
	addr := freePort(t)
	startRelay(t, addr)
	tn := startTestNet(t, func(c *control.Config) { c.DERPMap, c.EmbeddedDERP = standaloneRelayMap(addr), false }, auditPolicy)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rec := tn.startRecorder(ctx)
	client := tn.startAgent("client")
	srv := tn.startAgent("srv")
	eventually.True(t, "srv's rule naming the recorder", func() bool {
		nm := srv.Node().NetMap()
		return nm != nil && len(nm.SSHRules) == 1 && len(nm.SSHRules[0].Recorders) == 1
	})
	o := newOpenSSH(t, tn, client, "client", "srv")
	if out, stderr, code := o.ssh("root@srv", "echo audited; exit 3"); code != 3 || out != "audited\n" {
		t.Fatalf("root@srv: exit %d, %q, stderr %q", code, out, stderr)
	}
	if _, stderr, code := o.ssh("nosuchuser-tsc@srv", "true"); code != 255 || !strings.Contains(stderr, `local user "nosuchuser-tsc" not found`) {
		t.Fatalf("nosuchuser-tsc@srv: exit %d, stderr %q; want refused", code, stderr)
	}

	tn.cs.Stop()
	eventually.True(t, "srv to lose its map stream", func() bool {
		asOf, ok := srv.Node().MapCurrentAsOf()
		return ok && time.Since(asOf) > 50*time.Millisecond
	})
	if out, stderr, code := o.ssh("root@srv", "echo during the outage"); code != 0 || out != "during the outage\n" {
		t.Fatalf("root@srv while control is down: exit %d, %q, stderr %q", code, out, stderr)
	}
	outageEnd := time.Now()
	tn.cs.Start(nil)
	tn.srv = tn.cs.Control

	// A live login cut by a policy change that no longer lets root in.
	type result struct {
		stderr string
		code   int
	}
	live := make(chan result, 1)
	go func() {
		_, stderr, code := o.ssh("root@srv", "echo up; sleep 60")
		live <- result{stderr, code}
	}()
	eventually.True(t, "control to see the live login on srv", func() bool { return len(tn.srv.LiveSSHLogins()) == 1 })
	if _, err := tn.srv.SetPolicy(ctx, []byte(strings.Replace(auditPolicy, `"users": ["root", "autogroup:nonroot"]`, `"users": ["autogroup:nonroot"]`, 1)), "test"); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-live:
		if r.code == 0 || !strings.Contains(r.stderr, "Access revoked.") {
			t.Fatalf("the revoked login: exit %d, stderr %q", r.code, r.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the policy change did not cut the live login")
	}

	tn.serveAdmin(t)
	var ssh []api.AuditEvent
	eventually.True(t, "the export to hold 3 accepts, 3 ends, a refusal and a revocation", func() bool {
		ssh = sshAuditExport(t, tn.dir)
		return len(ssh) >= 8
	})
	kinds := func(k string) []api.AuditEvent {
		return slices.DeleteFunc(slices.Clone(ssh), func(e api.AuditEvent) bool { return e.Kind != k })
	}
	acc, ends, rej, rev := kinds("ssh-accept"), kinds("ssh-end"), kinds("ssh-reject"), kinds("ssh-revoke")
	if len(acc) != 3 || len(ends) != 3 || len(rej) != 1 || len(rev) != 1 {
		t.Fatalf("SSH events %+v; want 3 accepts, 3 ends, 1 refusal, 1 revocation", ssh)
	}
	srcID, dstID := tn.nodeID("client"), tn.nodeID("srv")
	for _, e := range ssh {
		x := e.SSH
		if x == nil || e.User != "alice@example.com" || x.SrcNode != srcID || x.SrcName != "client" || x.DstNode != dstID || x.DstName != "srv" ||
			!strings.HasPrefix(x.Remote, "100.") || (x.Rule == "") != (e.Kind == "ssh-reject") {
			t.Errorf("%s: %+v %+v; want alice on client (node %d) to srv (node %d), with the rule that let her in", e.Kind, e, x, srcID, dstID)
		}
	}
	for _, e := range acc {
		if !e.OK || e.SSH.LocalUser != "root" || e.SSH.SSHUser != "root" {
			t.Errorf("accept: %+v %+v", e, e.SSH)
		}
	}
	stored := map[string]bool{}
	for _, m := range rec.Store().List() {
		stored[m.ID] = true
	}
	if x := ends[0].SSH; x.ExitCode == nil || *x.ExitCode != 3 || x.Session != "exec" || x.LocalUser != "root" || !stored[x.Recording] {
		t.Errorf("first end: %+v; want exit 3 of an exec as root, recorded as one of %v", x, stored)
	}
	if x := ends[1].SSH; x.ExitCode == nil || *x.ExitCode != 0 || !stored[x.Recording] || x.Recording == ends[0].SSH.Recording ||
		!ends[1].Time.Before(outageEnd) || !x.Reported.After(outageEnd.Add(-time.Second)) {
		t.Errorf("the outage's end: %+v at %v; want exit 0, its own recording, decided before control came back at %v and reported after",
			x, ends[1].Time, outageEnd)
	}
	if e := rej[0]; e.OK || e.SSH.SSHUser != "nosuchuser-tsc" || !strings.Contains(e.Detail, `local user "nosuchuser-tsc" not found`) {
		t.Errorf("refusal: %+v %+v; want nosuchuser-tsc refused, saying why", e, e.SSH)
	}
	if e := rev[0]; e.OK || e.SSH.LocalUser != "root" || e.Detail != "Access revoked." || e.SSH.Rule == "" {
		t.Errorf("revocation: %+v %+v; want root's login cut, the rule it had named", e, e.SSH)
	}
	if x := ends[2].SSH; x.ExitCode == nil || *x.ExitCode == 0 || x.Session != "exec" {
		t.Errorf("the revoked session's end: %+v; want the exec ended by a signal", x)
	}
	t.Logf("export: %d SSH events, e.g. %s", len(ssh), mustJSON(ends[0]))
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
