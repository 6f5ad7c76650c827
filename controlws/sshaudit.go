package controlws

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// The login audit: a message pair with which an agent reports its SSH login decisions to
// control, which keeps them in its audit log. Added in version 5 (VersionRecording): on an
// older connection ReportSSHAudit returns ErrUnsupported without sending, and control
// answers it as the unknown message it was.
const (
	// TypeSSHAudit (node → control) carries up to MaxSSHAuditRecords records (SSHAudit).
	// Control answers TypeSSHAuditAnswer: how many of them, from the first, it stored.
	TypeSSHAudit       = "sshAudit"
	TypeSSHAuditAnswer = "sshAuditAnswer"
)

// Bounds of a report. Control takes the reporting node from the connection's Noise key,
// never from a record, and stores at most SSHAuditPerMinute records a node a minute.
const (
	// MaxSSHAuditRecords bounds the records of one message.
	MaxSSHAuditRecords = 64
	// SSHAuditPerMinute is how many records a minute control stores of one node (and its
	// burst); beyond it the answer stores fewer and says when to send the rest.
	SSHAuditPerMinute = 120
	// MaxAuditUser bounds SSHAuditRecord.User and LocalUser, in bytes.
	MaxAuditUser = 64
	// MaxAuditRule bounds SSHAuditRecord.Rule.
	MaxAuditRule = 256
	// MaxAuditReason bounds SSHAuditRecord.Reason.
	MaxAuditReason = 512
	// MaxAuditRecording bounds SSHAuditRecord.Recording.
	MaxAuditRecording = 64
)

// SSH login decisions, SSHAuditRecord.Decision.
const (
	AuditAccept      = "accept"       // a login let in
	AuditReject      = "reject"       // a login refused (Reason says why)
	AuditCheck       = "check"        // a login held by a check rule until its user re-authenticates
	AuditCheckAccept = "check-accept" // the held login's check passed
	AuditCheckReject = "check-reject" // the held login's check failed (Reason)
	AuditRevoke      = "revoke"       // a live login cut: the policy changed, or an admin ended it
	AuditEnd         = "end"          // a session ended (ExitCode, Duration, Recording)
)

var auditDecisions = []string{AuditAccept, AuditReject, AuditCheck, AuditCheckAccept, AuditCheckReject, AuditRevoke, AuditEnd}

// SSHAudit is the body of TypeSSHAudit.
type SSHAudit struct {
	Records []SSHAuditRecord `json:"records"`
}

// SSHAuditRecord is one SSH login decision of the reporting node's SSH server.
type SSHAuditRecord struct {
	Time     time.Time `json:"time"` // when the agent decided, by its clock
	Decision string    `json:"decision"`
	// Remote is the client's overlay address and port: control finds the source node by it.
	Remote    netip.AddrPort `json:"remote"`
	User      string         `json:"user,omitempty"`      // the SSH user the client asked for
	LocalUser string         `json:"localUser,omitempty"` // the account it runs as
	Rule      string         `json:"rule,omitempty"`      // the rule that decided, as the policy wrote it
	Reason    string         `json:"reason,omitempty"`    // why, for a refusal, check or revocation
	Recording string         `json:"recording,omitempty"` // the recording's ID, when recorded
	// ExitCode (0–255, -1 unknown) and DurationMs are those of an "end".
	ExitCode   int   `json:"exitCode,omitempty"`
	DurationMs int64 `json:"durationMs,omitempty"`
	// Kind is an ended session's kind: shell, exec or subsystem.
	Kind string `json:"kind,omitempty"`
}

// SSHAuditAnswer is the body of TypeSSHAuditAnswer.
type SSHAuditAnswer struct {
	// Stored is how many records, from the first, control kept; the node drops those.
	Stored int `json:"stored"`
	// RetryAfterMs, when the node's rate is spent, is how long until control takes more.
	RetryAfterMs int64 `json:"retryAfterMs,omitempty"`
}

// Validate reports the first record of a past a bound or malformed, naming it.
func (a *SSHAudit) Validate() error {
	if len(a.Records) > MaxSSHAuditRecords {
		return fmt.Errorf("sshAudit: %d records, over the limit of %d", len(a.Records), MaxSSHAuditRecords)
	}
	for i := range a.Records {
		if err := a.Records[i].Validate(); err != nil {
			return fmt.Errorf("sshAudit: records[%d]: %w", i, err)
		}
	}
	return nil
}

// Validate reports what of r is past a bound or malformed.
func (r *SSHAuditRecord) Validate() error {
	text := func(name, s string, max int) error {
		if len(s) > max || !utf8.ValidString(s) {
			return fmt.Errorf("%s is not UTF-8 of at most %d bytes", name, max)
		}
		return nil
	}
	switch {
	case r.Time.IsZero():
		return errors.New("time is missing")
	case !slices.Contains(auditDecisions, r.Decision):
		return fmt.Errorf("decision is not one of %s", strings.Join(auditDecisions, ", "))
	case !r.Remote.IsValid() || r.Remote.Addr().Zone() != "":
		return errors.New("remote is not an address and port")
	case r.ExitCode < -1 || r.ExitCode > 255:
		return errors.New("exitCode is not -1 to 255")
	case r.DurationMs < 0:
		return errors.New("durationMs is negative")
	case r.Kind != "" && r.Kind != "shell" && r.Kind != "exec" && r.Kind != "subsystem":
		return errors.New("kind is not shell, exec or subsystem")
	case strings.ContainsFunc(r.Recording, func(c rune) bool { return c < 0x21 || c > 0x7e }):
		return errors.New("recording is not printable ASCII")
	}
	for _, f := range []struct {
		name, s string
		max     int
	}{{"user", r.User, MaxAuditUser}, {"localUser", r.LocalUser, MaxAuditUser}, {"rule", r.Rule, MaxAuditRule},
		{"reason", r.Reason, MaxAuditReason}, {"recording", r.Recording, MaxAuditRecording}} {
		if err := text(f.name, f.s, f.max); err != nil {
			return err
		}
	}
	return nil
}

// ReportSSHAudit sends a's records and returns control's answer: how many it stored, and
// when it takes more if its rate for this node is spent. On a connection older than
// VersionRecording it returns an error wrapping ErrUnsupported without sending.
func (c *Client) ReportSSHAudit(ctx context.Context, a SSHAudit) (*SSHAuditAnswer, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	if c.Version() < VersionRecording {
		return nil, fmt.Errorf("%w (%s needs control protocol version %d, this connection speaks %d)", ErrUnsupported, TypeSSHAudit, VersionRecording, c.Version())
	}
	env, err := c.roundTrip(ctx, TypeSSHAudit, &a, TypeSSHAuditAnswer)
	if err != nil {
		return nil, err
	}
	var ans SSHAuditAnswer
	if err := env.DecodeBody(&ans); err != nil {
		return nil, err
	}
	if ans.Stored < 0 || ans.Stored > len(a.Records) || ans.RetryAfterMs < 0 {
		return nil, fmt.Errorf("controlws: sshAuditAnswer stores %d of %d records, retry after %d ms", ans.Stored, len(a.Records), ans.RetryAfterMs)
	}
	return &ans, nil
}
