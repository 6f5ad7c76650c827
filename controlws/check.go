package controlws

import (
	"net/netip"
	"time"
)

// Check mode and interactive login: message types added to protocol version 1. A server
// that predates them answers with CodeBadRequest ("unknown message type"); the client
// reports that as control not supporting the feature.
const (
	// TypeSSHCheck (node → control) asks for the verdict on an SSH login a check rule holds;
	// control answers with one or two TypeSSHCheckVerdict messages echoing its ID: at most one
	// pending verdict (with the URL the user must visit), then exactly one final verdict
	// (accept or reject), or an error.
	TypeSSHCheck        = "sshCheck"
	TypeSSHCheckVerdict = "sshCheckVerdict"
	// TypeSSHCheckCancel (node → control; ID = the sshCheck's ID, no body) gives up a held
	// check: control drops its pending check and answers the sshCheck with a reject.
	TypeSSHCheckCancel = "sshCheckCancel"
	// TypeLoginURL (control → node) answers an interactive register before its final answer:
	// the URL at which a user signs in to own the node. The registerResponse (or an error)
	// follows with the same ID once the user has done so, or the login expired.
	TypeLoginURL = "loginURL"
)

// SSHCheckRequest is the body of TypeSSHCheck. The destination is always the node the
// connection acts for (its map stream must run); control re-evaluates the policy itself and
// trusts neither CheckPeriod nor the user mapping it is sent.
type SSHCheckRequest struct {
	SrcNode   int64      `json:"srcNode"`   // the source node's ID, from the map
	SrcAddr   netip.Addr `json:"srcAddr"`   // the overlay address the SSH connection came from
	User      string     `json:"user"`      // the login the client asked for
	LocalUser string     `json:"localUser"` // the local account the agent mapped it to
	// CheckPeriod is the rule's period as the agent has it (nanoseconds); 0 means always.
	CheckPeriod time.Duration `json:"checkPeriod"`
	// HeldFor is how long the agent has been holding this login already (it may ask again
	// after control was unreachable): an authentication since then satisfies "always".
	HeldFor time.Duration `json:"heldFor,omitempty"`
}

// Check verdicts.
const (
	CheckAccept  = "accept"
	CheckReject  = "reject"
	CheckPending = "pending"
)

// SSHCheckVerdict is the body of TypeSSHCheckVerdict.
type SSHCheckVerdict struct {
	Verdict string `json:"verdict"` // CheckAccept, CheckReject or CheckPending
	// User is the login name of the user who must re-authenticate (the source node's owner).
	User string `json:"user,omitempty"`
	// URL is where that user re-authenticates (pending only).
	URL string `json:"url,omitempty"`
	// Expires is when a pending check times out (pending only).
	Expires time.Time `json:"expires,omitzero"`
	// Message says why, as a sentence fit for an SSH banner (reject; optional otherwise).
	Message string `json:"message,omitempty"`
}

// LoginURL is the body of TypeLoginURL.
type LoginURL struct {
	URL     string    `json:"url"`
	Expires time.Time `json:"expires"`
}
