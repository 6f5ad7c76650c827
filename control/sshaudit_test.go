package control

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"tsconnect/control/store"
	"tsconnect/controlws"
)

// TestSSHAudit: control keeps an agent's SSH login decisions with the source node found by
// the client's address and the target node taken from the reporting connection (a node
// cannot report as another), bounds a flood to its rate per node, refuses records past
// their bounds by name, and the retention sweep deletes what is older than the retention.
func TestSSHAudit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AuditRetention = time.Hour })
	ctx := context.Background()
	alice, bob := e.user("alice@example.com"), e.user("bob@example.com")
	if _, err := e.s.SetPolicy(ctx, []byte(`{"acls": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*"]}]}`), "test"); err != nil {
		t.Fatal(err)
	}
	k := e.authKey(AuthKeyOptions{User: alice.ID, Reusable: true})
	agent, agentNode := e.mustRegister(k, "server")
	_, laptop := e.mustRegister(k, "laptop")
	mallory, malloryNode := e.mustRegister(e.authKey(AuthKeyOptions{User: bob.ID}), "mallory")
	from := netip.AddrPortFrom(laptop.Addresses[0].Addr(), 40000)
	now := e.clock.Now()
	send := func(m *machine, recs ...controlws.SSHAuditRecord) (*controlws.SSHAuditAnswer, error) {
		return m.c.ReportSSHAudit(ctx, controlws.SSHAudit{Records: recs})
	}
	ans, err := send(agent,
		controlws.SSHAuditRecord{Time: now, Decision: controlws.AuditAccept, Remote: from, User: "root", LocalUser: "root", Rule: `{"action":"accept"}`},
		controlws.SSHAuditRecord{Time: now, Decision: controlws.AuditEnd, Remote: from, LocalUser: "root", ExitCode: 3, DurationMs: 1500, Kind: "shell", Recording: "rec-1"},
		controlws.SSHAuditRecord{Time: now, Decision: controlws.AuditReject, Remote: netip.MustParseAddrPort("100.127.1.1:22"), User: "x\x1b[2J", Reason: "no rule\x1b]0;t\a"})
	if err != nil || ans.Stored != 3 {
		t.Fatalf("report: %+v %v", ans, err)
	}
	// Mallory (bob's, who sees none of alice's nodes) reports a login from alice's laptop "on
	// the server": it is kept as mallory's own report, blaming nobody.
	if _, err := send(mallory, controlws.SSHAuditRecord{Time: now, Decision: controlws.AuditAccept, Remote: from, LocalUser: "root", Reason: "on server"}); err != nil {
		t.Fatal(err)
	}
	var got []AuthEvent
	if err := e.s.AuditExport(ctx, 0, time.Time{}, func(ev AuthEvent) error { got = append(got, ev); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("exported %d events, want 4: %+v", len(got), got)
	}
	acc, end, rej, fake := got[0], got[1], got[2], got[3]
	if acc.Kind != "ssh-accept" || !acc.OK || acc.Method != MethodSSH || acc.User != "alice@example.com" || acc.SSH == nil ||
		acc.SSH.SrcNode != laptop.ID || acc.SSH.SrcName != "laptop" || acc.SSH.DstNode != agentNode.ID || acc.SSH.DstName != "server" ||
		acc.SSH.LocalUser != "root" || acc.SSH.SSHUser != "root" || acc.SSH.Remote != from.String() || acc.SSH.ExitCode != nil {
		t.Errorf("accept: %+v %+v", acc, acc.SSH)
	}
	if end.Kind != "ssh-end" || end.SSH.ExitCode == nil || *end.SSH.ExitCode != 3 || end.SSH.DurationMs != 1500 || end.SSH.Recording != "rec-1" || end.SSH.Session != "shell" {
		t.Errorf("end: %+v %+v", end, end.SSH)
	}
	if rej.Kind != "ssh-reject" || rej.OK || rej.User != "" || rej.SSH.SrcNode != 0 || strings.ContainsRune(rej.Detail+rej.SSH.SSHUser, 0x1b) {
		t.Errorf("reject from no node, escapes removed: %+v %+v", rej, rej.SSH)
	}
	if fake.SSH.DstNode != malloryNode.ID || fake.SSH.DstName != "mallory" || fake.SSH.SrcNode != 0 || fake.User != "" {
		t.Errorf("mallory's report is kept as on node %d %q from node %d of %q; want its own %d, from no node", fake.SSH.DstNode, fake.SSH.DstName,
			fake.SSH.SrcNode, fake.User, malloryNode.ID)
	}

	// Bounds: too many records, a reason too long, each named.
	many := make([]controlws.SSHAuditRecord, controlws.MaxSSHAuditRecords+1)
	for i := range many {
		many[i] = controlws.SSHAuditRecord{Time: now, Decision: controlws.AuditAccept, Remote: from}
	}
	r := e.rawConn()
	r.send(controlws.TypeSSHAudit, 1, controlws.SSHAudit{Records: many})
	r.wantError(1, controlws.CodeBadRequest, "65 records, over the limit of 64")
	r.send(controlws.TypeSSHAudit, 2, controlws.SSHAudit{Records: many[:1]})
	r.wantError(2, controlws.CodeNotRegistered, "sshAudit before register")
	_, err = send(mallory, controlws.SSHAuditRecord{Time: now, Decision: controlws.AuditReject, Remote: from, Reason: strings.Repeat("x", controlws.MaxAuditReason+1)})
	if err == nil || !strings.Contains(err.Error(), "records[0]: reason") {
		t.Errorf("an over-long reason: %v", err)
	}

	// A flood: the burst is stored, then the node's rate; the rest waits.
	stored := 0
	for range 4 {
		ans, err := send(mallory, many[:controlws.MaxSSHAuditRecords]...)
		if err != nil {
			t.Fatal(err)
		}
		stored += ans.Stored
		if ans.Stored < controlws.MaxSSHAuditRecords && ans.RetryAfterMs <= 0 {
			t.Errorf("a cut answer without a retry time: %+v", ans)
		}
	}
	if stored < controlws.SSHAuditPerMinute-2 || stored > controlws.SSHAuditPerMinute+2 {
		t.Errorf("a flood of %d records stored %d, want the burst of %d", 4*controlws.MaxSSHAuditRecords, stored, controlws.SSHAuditPerMinute)
	}
	// The agent's own rate is its own.
	if ans, err := send(agent, many[0]); err != nil || ans.Stored != 1 {
		t.Errorf("the agent after mallory's flood: %+v %v", ans, err)
	}

	// Retention: an hour on, the sweep deletes everything older.
	e.clock.Advance(time.Hour + time.Minute)
	if _, err := send(agent, controlws.SSHAuditRecord{Time: e.clock.Now(), Decision: controlws.AuditAccept, Remote: from}); err != nil {
		t.Fatal(err)
	}
	n, err := e.s.sweepAudit()
	if err != nil || n < 4+stored {
		t.Errorf("the sweep deleted %d (%v), want at least %d", n, err, 4+stored)
	}
	got = got[:0]
	e.s.AuditExport(ctx, 0, time.Time{}, func(ev AuthEvent) error { got = append(got, ev); return nil })
	if len(got) != 1 {
		t.Errorf("after the sweep %d events are left, want the 1 newer than the retention", len(got))
	}
}

// TestAuditRetentionBounds: a retention under MinAuditRetention, or negative, is refused by name.
func TestAuditRetentionBounds(t *testing.T) {
	for _, d := range []time.Duration{time.Second, -time.Hour} {
		s, err := New(Config{StateDir: t.TempDir(), ServerURL: "http://127.0.0.1:1", AuditRetention: d})
		if err == nil {
			s.Close()
			t.Fatalf("retention %v accepted", d)
		}
		if !strings.Contains(err.Error(), "audit retention") {
			t.Errorf("retention %v: %v; want an error naming the audit retention", d, err)
		}
	}
}

// TestReplicasAuditSweepOnce: of two replicas on one PostgreSQL database, only the holder
// of the retention sweep's lease deletes old audit events; once it stops (giving the lease
// up) the other sweeps.
func TestReplicasAuditSweepOnce(t *testing.T) {
	rs, _ := newReplicas(t, 2, func(_ int, c *Config) { c.AuditRetention = MinAuditRetention })
	ctx := context.Background()
	holder, other := rs[0], rs[1]
	old := func() { // through the replica that stays
		t.Helper()
		if err := other.s.st.Update(ctx, func(tx store.Tx) error {
			return tx.InsertAuthEvent(&store.AuthEvent{Time: time.Now().Add(-time.Hour), Method: "ssh", Kind: "ssh-accept", OK: true})
		}); err != nil {
			t.Fatal(err)
		}
	}
	left := func() int {
		t.Helper()
		var n int
		other.s.AuditExport(ctx, 0, time.Time{}, func(AuthEvent) error { n++; return nil })
		return n
	}
	// Each tried at start-up: one holds the lease. Of the two sweeping the same old event,
	// that one deletes it.
	old()
	n0, err0 := rs[0].s.sweepAudit()
	n1, err1 := rs[1].s.sweepAudit()
	if err0 != nil || err1 != nil || n0+n1 != 1 || left() != 0 {
		t.Fatalf("the replicas deleted %d and %d of 1 old event (%v, %v); want one of them alone", n0, n1, err0, err1)
	}
	if n1 == 1 {
		holder, other = rs[1], rs[0]
	}
	old()
	if n, err := other.s.sweepAudit(); err != nil || n != 0 {
		t.Fatalf("the replica without the lease deleted %d events (%v)", n, err)
	}
	if err := holder.s.Close(); err != nil {
		t.Fatal(err)
	}
	// The holder's own loop may have swept the event above meanwhile: one more old event
	// after it stopped is the other's alone.
	old()
	if n, err := other.s.sweepAudit(); err != nil || n < 1 || left() != 0 {
		t.Fatalf("after the holder stopped, the other replica deleted %d (%v) and %d old events are left; want it to take the sweep over", n, err, left())
	}
}

// TestSSHAuditSentAgain: a record an agent sends again with the ID it had (after a restart
// before it knew control stored it) is answered as stored but kept once; the same ID from
// another node is that node's own record; records without an ID (older agents) are kept as
// they come; an ID past its bound is refused by name.
func TestSSHAuditSentAgain(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	k := e.authKey(AuthKeyOptions{User: e.user("alice@example.com").ID, Reusable: true})
	agent, _ := e.mustRegister(k, "server")
	other, _ := e.mustRegister(k, "other")
	now := e.clock.Now()
	rec := func(id string) controlws.SSHAuditRecord {
		return controlws.SSHAuditRecord{Time: now, Decision: controlws.AuditAccept, Remote: netip.MustParseAddrPort("100.64.0.9:40000"), ID: id, Reason: id}
	}
	for _, batch := range []struct {
		m    *machine
		recs []controlws.SSHAuditRecord
	}{
		{agent, []controlws.SSHAuditRecord{rec("id-1"), rec("id-2"), rec("")}},
		{agent, []controlws.SSHAuditRecord{rec("id-1"), rec("id-2"), rec(""), rec("id-3"), rec("id-3")}},
		{other, []controlws.SSHAuditRecord{rec("id-1")}},
	} {
		ans, err := batch.m.c.ReportSSHAudit(ctx, controlws.SSHAudit{Records: batch.recs})
		if err != nil || ans.Stored != len(batch.recs) {
			t.Fatalf("report of %d: %+v %v", len(batch.recs), ans, err)
		}
	}
	var got []string
	if err := e.s.AuditExport(ctx, 0, time.Time{}, func(ev AuthEvent) error {
		got = append(got, ev.SSH.DstName+":"+ev.Detail)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := "server:id-1 server:id-2 server: server: server:id-3 other:id-1"; strings.Join(got, " ") != want {
		t.Errorf("the log holds %v; want %s", got, want)
	}
	_, err := agent.c.ReportSSHAudit(ctx, controlws.SSHAudit{Records: []controlws.SSHAuditRecord{rec(strings.Repeat("x", controlws.MaxAuditID+1))}})
	if err == nil || !strings.Contains(err.Error(), "records[0]: id is not printable ASCII of at most 64 bytes") {
		t.Errorf("an over-long id: %v", err)
	}
	r := e.rawConn()
	r.send(controlws.TypeSSHAudit, 1, controlws.SSHAudit{Records: []controlws.SSHAuditRecord{rec("a b")}})
	r.wantError(1, controlws.CodeBadRequest, "id is not printable ASCII")
}
