package agent

import (
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"tsconnect/controlws"
	"tsconnect/sshd"
)

// TestAuditQueueBounded: past auditQueueMax the oldest record goes and is counted, batches
// are at most MaxSSHAuditRecords from the front, and texts from the SSH client are cut to
// valid UTF-8 within the protocol's bounds (a record control would refuse is never queued).
func TestAuditQueueBounded(t *testing.T) {
	a := &Agent{logf: t.Logf}
	remote := netip.MustParseAddrPort("100.64.0.2:40000")
	for i := range auditQueueMax + 10 {
		a.auditSSH(sshd.Decision{Time: time.Unix(int64(i), 0), Kind: sshd.DecisionAccept, Remote: remote, User: "root"})
	}
	if n, d := a.audit.len(), a.audit.dropped.Load(); n != auditQueueMax || d != 10 {
		t.Fatalf("queued %d, dropped %d; want %d and 10", n, d, auditQueueMax)
	}
	recs, _ := a.audit.batch()
	if len(recs) != controlws.MaxSSHAuditRecords || recs[0].Time.Unix() != 10 {
		t.Fatalf("batch of %d from time %d; want %d from 10 (the oldest 10 dropped)", len(recs), recs[0].Time.Unix(), controlws.MaxSSHAuditRecords)
	}
	a.audit.done(len(recs))
	if n := a.audit.len(); n != auditQueueMax-controlws.MaxSSHAuditRecords {
		t.Fatalf("after a stored batch %d queued", n)
	}

	b := &Agent{logf: t.Logf}
	b.auditSSH(sshd.Decision{Kind: sshd.DecisionReject, Remote: remote, User: strings.Repeat("é", 100) + "\xff", Reason: strings.Repeat("x", 10_000)})
	b.auditSSH(sshd.Decision{Kind: "bogus", Remote: remote})
	recs, _ = b.audit.batch()
	if len(recs) != 1 || b.audit.dropped.Load() != 1 {
		t.Fatalf("queued %d, dropped %d; want the long one cut and the bogus one dropped", len(recs), b.audit.dropped.Load())
	}
	r := recs[0]
	if len(r.User) > controlws.MaxAuditUser || !utf8.ValidString(r.User) || len(r.Reason) != controlws.MaxAuditReason || r.Validate() != nil {
		t.Errorf("cut record: user %q (%d bytes), reason %d bytes: %v", r.User, len(r.User), len(r.Reason), r.Validate())
	}
}
