package controlws

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Live SSH logins: a message pair added to protocol version 1 (a server that predates it
// answers CodeBadRequest, which ReportSSHSessions returns as ErrUnsupported).
const (
	// TypeSSHSessions (node → control) reports the node's live SSH logins and its paths to
	// its active peers (SSHSessions; the whole lists, replacing the last). Control answers it
	// once with TypeSSHSessionsAnswer: at once for a report with neither, else when an admin
	// ends one of the logins, when a newer report arrives, or after at most SSHSessionsHold;
	// the node then reports again.
	TypeSSHSessions       = "sshSessions"
	TypeSSHSessionsAnswer = "sshSessionsAnswer"
)

// Limits of a report.
const (
	// MaxSSHSessions bounds the logins of one report.
	MaxSSHSessions = 256
	// SSHSessionsHold is how long control holds a report's answer at most.
	SSHSessionsHold = 25 * time.Second
	// MaxEndReason bounds EndSSH.By.
	MaxEndReason = 256
)

// SSHSessions is the body of TypeSSHSessions.
type SSHSessions struct {
	Logins []SSHLogin `json:"logins"`
	// Peers are the node's paths to the peers it exchanged traffic with in the last 30 s
	// (at most MaxPeerPaths); absent from an agent that predates them. Needs no protocol
	// version: an older control drops it.
	Peers []PeerPath `json:"peers,omitempty"`
}

// PeerPath is the node's path to one peer, named by its overlay address: a LoginPath.
type PeerPath struct {
	Peer netip.Addr `json:"peer"`
	LoginPath
}

// MaxPeerPaths bounds SSHSessions.Peers.
const MaxPeerPaths = 64

// SSHLogin is one live SSH login on the reporting node.
type SSHLogin struct {
	Remote    netip.AddrPort `json:"remote"`    // the client's overlay address and port
	LocalUser string         `json:"localUser"` // the account it runs as
	Started   time.Time      `json:"started"`
	Sessions  int            `json:"sessions"` // open session channels
	BytesIn   int64          `json:"bytesIn"`
	BytesOut  int64          `json:"bytesOut"`
	// Path is how the node's traffic to the client goes, as of the report; nil from an
	// agent that predates it. Needs no protocol version: an older control drops it.
	Path *LoginPath `json:"path,omitempty"`
}

// LoginPath is a login's path: direct to the client's endpoint, or relayed through a
// DERP region, with the last disco round trip (0: none measured, as for a browser).
type LoginPath struct {
	Direct     netip.AddrPort `json:"direct,omitzero"`
	RegionCode string         `json:"regionCode,omitempty"`
	RTTMillis  float64        `json:"rttMs,omitempty"`
}

// Bounds of a LoginPath.
const (
	// MaxRegionCode bounds LoginPath.RegionCode: 1 to 16 bytes of [A-Za-z0-9-].
	MaxRegionCode = 16
	// MaxRTTMillis bounds LoginPath.RTTMillis.
	MaxRTTMillis = 60_000
)

// Validate reports what of p is malformed or out of bounds.
func (p *LoginPath) Validate() error {
	switch {
	case p.Direct.IsValid() && (p.Direct.Port() == 0 || p.Direct.Addr().Zone() != "" || p.Direct.Addr().IsUnspecified()):
		return errors.New("path: direct is not a unicast address and port")
	case len(p.RegionCode) > MaxRegionCode || strings.ContainsFunc(p.RegionCode, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-')
	}):
		return fmt.Errorf("path: regionCode is not at most %d bytes of letters, digits and hyphens", MaxRegionCode)
	case !(p.RTTMillis >= 0 && p.RTTMillis <= MaxRTTMillis): // NaN fails too
		return fmt.Errorf("path: rttMs %v outside 0 to %d", p.RTTMillis, MaxRTTMillis)
	}
	return nil
}

// SSHSessionsAnswer is the body of TypeSSHSessionsAnswer.
type SSHSessionsAnswer struct {
	// End lists logins an admin ended: the node cuts each, telling its client By.
	End []EndSSH `json:"end,omitempty"`
}

// EndSSH names a login to end and who ended it ("Session ended by EMAIL.").
type EndSSH struct {
	Remote netip.AddrPort `json:"remote"`
	By     string         `json:"by"`
}

// Validate reports the first login of r past a limit or malformed, naming it.
func (r *SSHSessions) Validate() error {
	if len(r.Logins) > MaxSSHSessions {
		return fmt.Errorf("sshSessions: %d logins, over the limit of %d", len(r.Logins), MaxSSHSessions)
	}
	for i, l := range r.Logins {
		switch {
		case !l.Remote.IsValid() || l.Remote.Addr().Zone() != "":
			return fmt.Errorf("sshSessions: logins[%d]: remote is not an address and port", i)
		case l.LocalUser == "" || len(l.LocalUser) > 64 || strings.ContainsFunc(l.LocalUser, func(r rune) bool { return r < 0x21 || r > 0x7e }):
			return fmt.Errorf("sshSessions: logins[%d]: localUser is not an account name of at most 64 printable ASCII bytes", i)
		case l.Sessions < 0 || l.Sessions > 1<<16 || l.BytesIn < 0 || l.BytesOut < 0:
			return fmt.Errorf("sshSessions: logins[%d]: negative or impossible counts", i)
		}
		if l.Path != nil {
			if err := l.Path.Validate(); err != nil {
				return fmt.Errorf("sshSessions: logins[%d]: %w", i, err)
			}
		}
	}
	if len(r.Peers) > MaxPeerPaths {
		return fmt.Errorf("sshSessions: %d peers, over the limit of %d", len(r.Peers), MaxPeerPaths)
	}
	seen := make(map[netip.Addr]bool, len(r.Peers))
	for i, p := range r.Peers {
		switch {
		case !p.Peer.IsValid() || p.Peer.Zone() != "" || p.Peer.IsUnspecified():
			return fmt.Errorf("sshSessions: peers[%d]: peer is not an overlay address", i)
		case seen[p.Peer]:
			return fmt.Errorf("sshSessions: peers[%d]: peer %v listed twice", i, p.Peer)
		}
		seen[p.Peer] = true
		if err := p.LoginPath.Validate(); err != nil {
			return fmt.Errorf("sshSessions: peers[%d]: %w", i, err)
		}
	}
	return nil
}

// ReportSSHSessions reports the node's live SSH logins and waits for control's answer (up to
// SSHSessionsHold): the logins an admin ended, if any. A server without the message returns
// an error wrapping ErrUnsupported.
func (c *Client) ReportSSHSessions(ctx context.Context, r SSHSessions) (*SSHSessionsAnswer, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	var a SSHSessionsAnswer
	if err := c.optionalRoundTrip(ctx, TypeSSHSessions, &r, TypeSSHSessionsAnswer, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// optionalRoundTrip sends a request of a message type a server may predate and decodes its
// answer into out: a server that does not know typ returns an error wrapping ErrUnsupported.
func (c *Client) optionalRoundTrip(ctx context.Context, typ string, body any, want string, out any) error {
	env, err := c.roundTrip(ctx, typ, body, want)
	var ce *Error
	if errors.As(err, &ce) && ce.Code == CodeBadRequest && strings.Contains(ce.Message, "unknown message type") {
		return fmt.Errorf("%w (%s)", ErrUnsupported, typ)
	}
	if err != nil {
		return err
	}
	return env.DecodeBody(out)
}
