package agent

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"tsconnect/controlws"
	"tsconnect/internal/syncbuf"
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

// journalQueue is a queue kept in dir's journal, as a starting agent opens it.
func journalQueue(t *testing.T, dir string) *auditQueue {
	t.Helper()
	q := &auditQueue{}
	if err := q.open(dir, t.Logf); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.close)
	return q
}

// testRecord is the i-th record of a test, with its ID set as auditRecord sets it.
func testRecord(i int) controlws.SSHAuditRecord {
	return controlws.SSHAuditRecord{Time: time.Unix(int64(i), 0).UTC(), Decision: controlws.AuditAccept,
		Remote: netip.MustParseAddrPort("100.64.0.2:40000"), User: "root", ID: newAuditID()}
}

// TestAuditJournalRestart: records queued survive a restart (a new queue on the same state
// dir gets them, IDs and all, in order), the file is mode 0600, a cut rewrite's temporary
// file is removed, and records control stored are gone from it at the next start.
func TestAuditJournalRestart(t *testing.T) {
	dir := t.TempDir()
	q := journalQueue(t, dir)
	var want []controlws.SSHAuditRecord
	for i := range 5 {
		r := testRecord(i)
		want = append(want, r)
		q.add(r)
	}
	fi, err := os.Stat(filepath.Join(dir, auditJournalFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("journal: %v, %v; want mode 0600", fi, err)
	}
	// A crash: the queue is never closed, and a rewrite cut short left its temporary file.
	tmp := filepath.Join(dir, ".tmp-"+auditJournalFile+"123")
	if err := os.WriteFile(tmp, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	q2 := journalQueue(t, dir)
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("the temporary file of a cut rewrite is still there: %v", err)
	}
	got, _ := q2.batch()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after a restart\n%v\nwant\n%v", got, want)
	}
	q2.done(2)
	q2.add(testRecord(5))
	q3 := journalQueue(t, dir)
	got, _ = q3.batch()
	if len(got) != 4 || got[0].ID != want[2].ID || got[3].Time.Unix() != 5 {
		t.Fatalf("after 2 stored, 1 more and a restart: %v", got)
	}
	q3.done(4)
	if fi, err := os.Stat(filepath.Join(dir, auditJournalFile)); err != nil || fi.Size() != 0 {
		t.Fatalf("all stored: journal %v, %v; want empty", fi, err)
	}
	if n := journalQueue(t, dir).len(); n != 0 {
		t.Fatalf("all stored, restarted: %d queued", n)
	}
}

// TestAuditJournalDamagedTail: a line torn by a crash mid-write, or one whose checksum does
// not match, ends what is read back, is logged, and is gone from the file after the start;
// a start on it never fails.
func TestAuditJournalDamagedTail(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
		keep   int
	}{
		{"torn", func(b []byte) []byte { return b[:len(b)-20] }, 2},
		{"flipped", func(b []byte) []byte { b[len(b)/2] ^= 1; return b }, 1},
		{"no checksum", func(b []byte) []byte { return append(b, "{\"time\":1}\n"...) }, 3},
		{"too long", func(b []byte) []byte { return append(b, bytes.Repeat([]byte("x"), maxJournalLine+1)...) }, 3},
		{"binary", func(b []byte) []byte { return append([]byte("\x00\x01\x02\n"), b...) }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			q := journalQueue(t, dir)
			for i := range 3 {
				q.add(testRecord(i))
			}
			q.close()
			path := filepath.Join(dir, auditJournalFile)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tc.damage(b), 0o600); err != nil {
				t.Fatal(err)
			}
			var logs syncbuf.Buffer
			q2 := &auditQueue{}
			if err := q2.open(dir, func(f string, a ...any) { fmt.Fprintf(&logs, f+"\n", a...) }); err != nil {
				t.Fatalf("start on a damaged journal: %v", err)
			}
			defer q2.close()
			got, _ := q2.batch()
			if len(got) != tc.keep {
				t.Fatalf("kept %d records; want %d", len(got), tc.keep)
			}
			for i, r := range got {
				if r.Time.Unix() != int64(i) {
					t.Errorf("record %d is from time %d", i, r.Time.Unix())
				}
			}
			if !strings.Contains(logs.String(), "dropped with what follows it") {
				t.Errorf("the damage was not logged: %q", logs.String())
			}
			if n := journalQueue(t, dir).len(); n != tc.keep {
				t.Errorf("the next start has %d records; want %d", n, tc.keep)
			}
		})
	}
}

// TestAuditJournalBounded: a journal never holds more than the queue's bound: past
// auditQueueMax the oldest go (counted), the file is compacted as they go, and a start on a
// journal longer than the bound (written by hand) keeps its newest auditQueueMax.
func TestAuditJournalBounded(t *testing.T) {
	dir := t.TempDir()
	q := journalQueue(t, dir)
	for i := range 2 * auditQueueMax {
		q.add(testRecord(i))
	}
	if n, d := q.len(), q.dropped.Load(); n != auditQueueMax || d != auditQueueMax {
		t.Fatalf("queued %d, dropped %d; want %d each", n, d, auditQueueMax)
	}
	path := filepath.Join(dir, auditJournalFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if lines := bytes.Count(b, []byte("\n")); lines < auditQueueMax || lines > auditQueueMax+auditQueueMax/4+1 {
		t.Fatalf("journal of %d lines for %d queued", lines, auditQueueMax)
	}
	q.close()
	var extra []byte
	for i := range 10 {
		r := testRecord(2*auditQueueMax + i)
		extra = append(extra, journalLine(&r)...)
	}
	if err := os.WriteFile(path, append(b, extra...), 0o600); err != nil {
		t.Fatal(err)
	}
	q2 := journalQueue(t, dir)
	got, _ := q2.batch()
	if q2.len() != auditQueueMax || got[0].Time.Unix() != auditQueueMax+10 {
		t.Fatalf("restarted: %d queued from time %d; want %d from %d", q2.len(), got[0].Time.Unix(), auditQueueMax, auditQueueMax+10)
	}
	if fi, _ := os.Stat(path); fi.Size() > auditQueueBytes {
		t.Fatalf("journal of %d bytes", fi.Size())
	}
}
