package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"tsconnect/controlws"
	"tsconnect/internal/backoff"
	"tsconnect/sshd"
)

// The login audit: every SSH login decision goes to control (controlws.TypeSSHAudit)
// through a bounded queue, so that decisions made while control is unreachable are sent
// once it is back. The queue is kept in a journal in the state dir (auditjournal.go), so
// that an agent restart or crash loses none of it; each record carries a random ID by which
// control stores a record sent again (after a crash between its sending and the journal's
// compaction) only once.
const (
	// auditQueueMax bounds the records waiting for control; past it, or past
	// auditQueueBytes of them, the oldest is dropped (tsconnect_agent_ssh_audit_dropped_total).
	auditQueueMax = 4096
	// auditQueueBytes bounds the journal lines of the records waiting.
	auditQueueBytes = 4 << 20
	// auditOld is how long the agent waits, on a connection older than the message, before
	// looking again (a reconnect may reach an upgraded control).
	auditOld = time.Minute
)

// auditEntry is a queued record and the size of its journal line.
type auditEntry struct {
	rec  controlws.SSHAuditRecord
	size int
}

// auditQueue holds the records not yet stored by control.
type auditQueue struct {
	mu      sync.Mutex
	recs    []auditEntry
	bytes   int           // the sizes of recs
	j       *auditJournal // nil: kept in memory only
	wake    chan struct{} // a record came
	dropped atomic.Uint64
}

// add queues r, dropping the oldest records while the queue is past its bounds.
func (q *auditQueue) add(r controlws.SSHAuditRecord) {
	line := journalLine(&r)
	q.mu.Lock()
	if q.wake == nil {
		q.wake = make(chan struct{}, 1)
	}
	q.recs = append(q.recs, auditEntry{r, len(line)})
	q.bytes += len(line)
	q.trim()
	if q.j != nil {
		q.j.append(line, q.recs, q.bytes)
	}
	wake := q.wake
	q.mu.Unlock()
	select {
	case wake <- struct{}{}:
	default:
	}
}

// trim drops the oldest records past auditQueueMax or auditQueueBytes, counting them.
func (q *auditQueue) trim() {
	n := 0
	for len(q.recs)-n > auditQueueMax || (q.bytes > auditQueueBytes && len(q.recs)-n > 1) {
		q.bytes -= q.recs[n].size
		n++
	}
	q.recs = q.recs[n:]
	q.dropped.Add(uint64(n))
}

// batch returns up to controlws.MaxSSHAuditRecords records from the front, and the channel
// that signals the next record.
func (q *auditQueue) batch() ([]controlws.SSHAuditRecord, <-chan struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.wake == nil {
		q.wake = make(chan struct{}, 1)
	}
	out := make([]controlws.SSHAuditRecord, 0, min(len(q.recs), controlws.MaxSSHAuditRecords))
	for _, e := range q.recs[:min(len(q.recs), controlws.MaxSSHAuditRecords)] {
		out = append(out, e.rec)
	}
	return out, q.wake
}

// done drops the first n records (control stored them) and compacts the journal.
func (q *auditQueue) done(n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n = min(n, len(q.recs))
	for _, e := range q.recs[:n] {
		q.bytes -= e.size
	}
	q.recs = q.recs[n:]
	if len(q.recs) == 0 {
		q.recs = nil // let the backing array go
	}
	if q.j != nil && n > 0 {
		q.j.rewrite(q.recs)
	}
}

// open loads the journal in dir into the empty queue and keeps it from now on.
func (q *auditQueue) open(dir string, logf func(string, ...any)) error {
	j, recs, dropped, err := openAuditJournal(dir, logf)
	if err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.j, q.recs, q.bytes = j, recs, 0
	for _, e := range recs {
		q.bytes += e.size
	}
	q.dropped.Add(uint64(dropped))
	if len(recs) > 0 {
		logf("agent: %d SSH audit records from before the restart to send to control", len(recs))
	}
	return nil
}

// close stops keeping the journal (what it holds stays for the next start).
func (q *auditQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.j != nil {
		q.j.close()
		q.j = nil
	}
}

// len is how many records wait.
func (q *auditQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.recs)
}

// auditSSH is the SSH server's Server.Audit: it queues d for control.
func (a *Agent) auditSSH(d sshd.Decision) {
	a.auditRecord(controlws.SSHAuditRecord{Time: d.Time, Decision: d.Kind, Remote: d.Remote, User: d.User, LocalUser: d.LocalUser,
		Rule: d.Rule, Reason: d.Reason, Recording: d.Recording, ExitCode: d.ExitCode, DurationMs: d.Duration.Milliseconds(), Kind: d.Session})
}

// auditRecord queues r with its texts cut to the protocol's bounds (control escapes them
// where it shows them).
func (a *Agent) auditRecord(r controlws.SSHAuditRecord) {
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	r.User, r.LocalUser = fit(r.User, controlws.MaxAuditUser), fit(r.LocalUser, controlws.MaxAuditUser)
	r.Rule, r.Reason = fit(r.Rule, controlws.MaxAuditRule), fit(r.Reason, controlws.MaxAuditReason)
	if r.ID == "" {
		r.ID = newAuditID()
	}
	if err := r.Validate(); err != nil {
		a.logf("agent: SSH audit record not sent: %v", err)
		a.audit.dropped.Add(1)
		return
	}
	a.audit.add(r)
}

// newAuditID is a random 128-bit record ID, in hex.
func newAuditID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// fit is s as valid UTF-8 of at most max bytes, cut at a character.
func fit(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// sendAudit sends the queued records to control as they come, until ctx ends: while
// control is unreachable it tries again (backing off to 10 s), when control's rate for this
// node is spent it waits as control says, and a control without the message is asked
// again after auditOld.
func (a *Agent) sendAudit(ctx context.Context) {
	retry := backoff.Backoff{Min: time.Second, Max: 10 * time.Second}
	for ctx.Err() == nil {
		recs, wake := a.audit.batch()
		if len(recs) == 0 {
			select {
			case <-wake:
			case <-ctx.Done():
			}
			continue
		}
		ans, err := a.node.ReportSSHAudit(ctx, controlws.SSHAudit{Records: recs})
		switch {
		case errors.Is(err, controlws.ErrUnsupported):
			sleep(ctx, auditOld)
		case err != nil:
			sleep(ctx, retry.Next())
		default:
			retry.Reset()
			a.audit.done(ans.Stored)
			if ans.Stored < len(recs) {
				sleep(ctx, max(time.Duration(ans.RetryAfterMs)*time.Millisecond, 100*time.Millisecond))
			}
		}
	}
}
