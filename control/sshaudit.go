package control

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"tsconnect/control/store"
	"tsconnect/controlws"
	"tsconnect/internal/safetext"
)

// The SSH login audit: the decisions the agents report (TypeSSHAudit), kept in the audit log
// as events of method "ssh" and kind "ssh-" + the decision, with AuditSSH describing the login.

// MethodSSH is the method of the audit log's SSH login events: the agent decided by the
// overlay identity of the connecting node.
const MethodSSH AuthMethod = "ssh"

// MinAuditRetention is the shortest Config.AuditRetention accepted.
const MinAuditRetention = time.Minute

// maxAuditSkew is how far ahead of control's clock an agent's record time may be; a later
// one is kept as the time control received it.
const maxAuditSkew = time.Minute

// leaseAuditSweep is the lease on the audit log's retention sweep, which one replica holds.
const leaseAuditSweep = "audit-retention"

// AuditSSH is what the audit log keeps of an SSH login beyond who (AuthEvent.User, the
// source node's owner) and why (AuthEvent.Detail). The reporting agent's node is the one
// whose control connection sent it; the source node is found by the client's address,
// among the nodes the agent's node can see.
type AuditSSH struct {
	SrcNode int64  `json:"srcNode,omitempty"` // 0: no node of the network has that address
	SrcName string `json:"srcName,omitempty"`
	// SrcTagged is set when the source node is tagged (it has no user).
	SrcTagged bool   `json:"srcTagged,omitempty"`
	DstNode   int64  `json:"dstNode"`
	DstName   string `json:"dstName"`
	Remote    string `json:"remote"`              // the client's overlay address and port
	SSHUser   string `json:"sshUser,omitempty"`   // the user the client asked for
	LocalUser string `json:"localUser,omitempty"` // the account it runs as
	Rule      string `json:"rule,omitempty"`
	Recording string `json:"recording,omitempty"` // the recording's ID, when recorded
	// ExitCode (-1 unknown), DurationMs and Session (shell, exec, subsystem) describe an
	// ended session.
	ExitCode   *int      `json:"exitCode,omitempty"`
	DurationMs int64     `json:"durationMs,omitempty"`
	Session    string    `json:"session,omitempty"`
	Reported   time.Time `json:"reported"` // when control received it; AuthEvent.Time is the agent's
}

// sshAudit serves a TypeSSHAudit: it stores as many records as node's rate allows, in one
// transaction, and says how many.
func (nc *nodeConn) sshAudit(ctx context.Context, env *controlws.Envelope) (string, any, error) {
	var a controlws.SSHAudit
	if err := json.Unmarshal(env.Body, &a); err != nil {
		return "", nil, errf(controlws.CodeBadRequest, "sshAudit: %v", err)
	}
	if err := a.Validate(); err != nil {
		return "", nil, errf(controlws.CodeBadRequest, "%v", err)
	}
	id := nc.nodeID.Load()
	if id == 0 {
		return "", nil, errf(controlws.CodeNotRegistered, "sshAudit before register or mapRequest on this connection")
	}
	s := nc.s
	now := s.now().UTC()
	n, wait := s.auditRate.take(id, len(a.Records), now)
	if n < len(a.Records) {
		s.m.auditLimited.Add(float64(len(a.Records) - n))
	}
	if err := s.storeSSHAudit(ctx, id, a.Records[:n], now); err != nil {
		return "", nil, err
	}
	return controlws.TypeSSHAuditAnswer, &controlws.SSHAuditAnswer{Stored: n, RetryAfterMs: wait.Milliseconds()}, nil
}

// storeSSHAudit writes node dst's records as audit events received at now.
func (s *Server) storeSSHAudit(ctx context.Context, dst int64, recs []controlws.SSHAuditRecord, now time.Time) error {
	if len(recs) == 0 {
		return nil
	}
	events := make([]store.AuthEvent, 0, len(recs))
	s.mu.RLock()
	c := s.compiledLocked()
	dstName := ""
	if ln := s.nodes[dst]; ln != nil {
		dstName = ln.n.Name
	}
	for _, r := range recs {
		e := store.AuthEvent{Time: r.Time.UTC(), Method: string(MethodSSH), Kind: "ssh-" + r.Decision,
			OK:     r.Decision == controlws.AuditAccept || r.Decision == controlws.AuditCheckAccept || r.Decision == controlws.AuditEnd,
			Detail: safetext.Bounded(r.Reason, MaxAuditDetail)}
		if e.Time.After(now.Add(maxAuditSkew)) {
			e.Time = now
		}
		x := AuditSSH{DstNode: dst, DstName: dstName, Remote: r.Remote.String(), Reported: now,
			SSHUser: safetext.Bounded(r.User, controlws.MaxAuditUser), LocalUser: safetext.Bounded(r.LocalUser, controlws.MaxAuditUser),
			Rule: safetext.Bounded(r.Rule, controlws.MaxAuditRule), Recording: r.Recording, Session: r.Kind}
		if r.Decision == controlws.AuditEnd {
			code := r.ExitCode
			x.ExitCode, x.DurationMs = &code, r.DurationMs
		}
		// The source is the agent's word: it is named only when it is a node that can reach
		// the agent (a peer in its map), so a node can blame no one it cannot see.
		if src, ok := s.addrs[r.Remote.Addr()]; ok && src != dst && c.visible(dst, src) {
			if ln := s.nodes[src]; ln != nil {
				x.SrcNode, x.SrcName, x.SrcTagged = src, ln.n.Name, len(ln.n.Tags) > 0
				if !x.SrcTagged {
					e.UserID, e.Email = ln.n.User, s.users[ln.n.User].LoginName
				}
			}
		}
		e.SSH, _ = json.Marshal(&x)
		events = append(events, e)
	}
	s.mu.RUnlock()
	err := s.st.Update(ctx, func(tx store.Tx) error {
		for i := range events {
			if err := tx.InsertAuthEvent(&events[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("control: SSH audit of node %d: %w", dst, err)
	}
	for _, e := range events {
		result := "failed"
		if e.OK {
			result = "ok"
		}
		s.m.auth.WithLabelValues(e.Kind, string(MethodSSH), result).Inc()
	}
	return nil
}

// auditSweepEvery is how often the retention sweep runs.
func (s *Server) auditSweepEvery() time.Duration {
	return min(s.cfg.AuditRetention/10, time.Hour)
}

// auditSweepLoop deletes the audit events past Config.AuditRetention until the server closes.
func (s *Server) auditSweepLoop() {
	defer s.wg.Done()
	if s.cfg.AuditRetention <= 0 {
		return
	}
	t := time.NewTicker(s.auditSweepEvery())
	defer t.Stop()
	for {
		if _, err := s.sweepAudit(); err != nil && s.ctx.Err() == nil {
			s.logf("control: audit retention sweep: %v", err)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweepAudit runs one retention sweep and returns how many events it deleted. Of replicas
// sharing a store, only the holder of leaseAuditSweep deletes (taken for two sweep periods,
// so another takes over once the holder is gone).
func (s *Server) sweepAudit() (int, error) {
	now := s.now().UTC()
	var n int
	err := s.st.Update(s.ctx, func(tx store.Tx) error {
		if s.origin != "" {
			held, err := tx.TryLease(leaseAuditSweep, s.origin, now, 2*s.auditSweepEvery())
			if err != nil || !held {
				return err
			}
		}
		var err error
		n, err = tx.DeleteAuthEventsBefore(now.Add(-s.cfg.AuditRetention))
		return err
	})
	if err != nil {
		return 0, err
	}
	if n > 0 {
		s.logf("control: audit retention: deleted %d events older than %v", n, s.cfg.AuditRetention)
	}
	return n, nil
}

// AuditExport calls fn with the audit events after ID after (0: from the oldest) and at or
// after since (zero: any time), oldest first, in pages, until there are no more or fn fails.
func (s *Server) AuditExport(ctx context.Context, after int64, since time.Time, fn func(AuthEvent) error) error {
	const page = 500
	for {
		var es []store.AuthEvent
		err := s.st.Read(ctx, func(tx store.Tx) error {
			var err error
			es, err = tx.AuthEventsAfter(after, since, page)
			return err
		})
		if err != nil {
			return fmt.Errorf("control: audit export: %w", err)
		}
		for _, e := range es {
			if err := fn(authEventFrom(e)); err != nil {
				return err
			}
			after = e.ID
		}
		if len(es) < page {
			return nil
		}
	}
}
