package agent

import (
	"context"
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
// once it is back. The queue lives in memory: an agent restart loses what it held.
const (
	// auditQueueMax bounds the records waiting for control; past it the oldest is dropped
	// (tsconnect_agent_ssh_audit_dropped_total).
	auditQueueMax = 4096
	// auditOld is how long the agent waits, on a connection older than the message, before
	// looking again (a reconnect may reach an upgraded control).
	auditOld = time.Minute
)

// auditQueue holds the records not yet stored by control.
type auditQueue struct {
	mu      sync.Mutex
	recs    []controlws.SSHAuditRecord
	wake    chan struct{} // a record came
	dropped atomic.Uint64
}

// add queues r, dropping the oldest record when the queue is full.
func (q *auditQueue) add(r controlws.SSHAuditRecord) {
	q.mu.Lock()
	if q.wake == nil {
		q.wake = make(chan struct{}, 1)
	}
	if len(q.recs) >= auditQueueMax {
		q.recs = q.recs[1:]
		q.dropped.Add(1)
	}
	q.recs = append(q.recs, r)
	wake := q.wake
	q.mu.Unlock()
	select {
	case wake <- struct{}{}:
	default:
	}
}

// batch returns up to controlws.MaxSSHAuditRecords records from the front, and the channel
// that signals the next record.
func (q *auditQueue) batch() ([]controlws.SSHAuditRecord, <-chan struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.wake == nil {
		q.wake = make(chan struct{}, 1)
	}
	return append([]controlws.SSHAuditRecord(nil), q.recs[:min(len(q.recs), controlws.MaxSSHAuditRecords)]...), q.wake
}

// done drops the first n records (control stored them).
func (q *auditQueue) done(n int) {
	q.mu.Lock()
	q.recs = q.recs[min(n, len(q.recs)):]
	if len(q.recs) == 0 {
		q.recs = nil // let the backing array go
	}
	q.mu.Unlock()
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
	if err := r.Validate(); err != nil {
		a.logf("agent: SSH audit record not sent: %v", err)
		a.audit.dropped.Add(1)
		return
	}
	a.audit.add(r)
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
