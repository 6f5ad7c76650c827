// Package rules is a policy compiled for one node: its inbound packet filter and its SSH
// rules, and how to evaluate them. It has no parser, so the browser's wasm can carry it.
package rules

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// NodeRules is what one destination node enforces: its inbound packet
// filter and its SSH rules (check rules before accept rules), concerning only it.
type NodeRules struct {
	Filter Filter    `json:"filter"`
	SSH    []SSHRule `json:"ssh"`
	// RecordFrom, on a recorder node, is the overlay addresses of the nodes an ssh rule
	// naming it as recorder applies to: the only nodes whose recordings it accepts
	// (sorted, at most MaxRecordFrom).
	RecordFrom []netip.Addr `json:"recordFrom,omitempty"`
}

// MaxRecordFrom bounds NodeRules.RecordFrom: two addresses of each of 65,536 nodes.
const MaxRecordFrom = 1 << 17

// Action is what an SSH rule or verdict says about a login.
type Action string

// SSH actions.
const (
	Accept Action = "accept" // log in
	Check  Action = "check"  // log in after the user re-authenticates
	Reject Action = "reject" // refuse
)

// SSHRule is one compiled SSH rule for a destination node. The agent tries
// its node's rules in order; the first whose Principals contain the source
// address and whose Users map the requested user decides.
type SSHRule struct {
	// Principals are the overlay addresses of the source nodes the rule admits
	// (only addresses the packet filter lets reach port 22).
	Principals []netip.Addr `json:"principals"`
	// Users maps a requested login to the local account: an exact name wins
	// over "*"; the value "=" means the requested name itself (never root);
	// "" means refused.
	Users       map[string]string `json:"users"`
	Action      Action            `json:"action"`
	CheckPeriod time.Duration     `json:"checkPeriod,omitempty"` // check rules: 0 means every login
	AcceptEnv   []string          `json:"acceptEnv,omitempty"`   // patterns with * and ?
	Rule        int               `json:"rule"`                  // index in the policy's ssh section
	Origin      string            `json:"origin"`                // e.g. "ssh[1] (policy.hujson:14:5)"
	// Recorders are the recorder nodes the rule's logins are recorded to, each one
	// overlay address and RecorderPort, tried in order (at most MaxRecorders).
	Recorders []netip.AddrPort `json:"recorders,omitempty"`
	// EnforceRecorder refuses a login no recorder accepts, and cuts it when its
	// recording breaks. An agent that does not know the field ignores it (see
	// docs/protocols.md).
	EnforceRecorder bool `json:"enforceRecorder,omitempty"`
	// RecordInput records what the user types too (off by default: it catches passwords).
	RecordInput bool `json:"recordInput,omitempty"`
}

// RecorderPort is the overlay TCP port a recorder node accepts recordings on.
const RecorderPort = 8410

// MaxRecorders bounds the recorders one SSH rule names, and the addresses it compiles to.
const MaxRecorders = 16

// Verdict is the outcome of one SSH login attempt.
type Verdict struct {
	Action      Action
	LocalUser   string        // the account to log in as; "" on reject
	Rule        int           // index in the ssh section of the deciding rule; -1 if none
	Origin      string        // the deciding rule, for logs
	Reason      string        // a sentence fit for an SSH banner
	CheckPeriod time.Duration // for Check: how long a re-authentication is valid; 0 = every login
	AcceptEnv   []string
	// Recorders, EnforceRecorder and RecordInput are the deciding rule's (see SSHRule);
	// only an Accept or Check verdict carries them.
	Recorders       []netip.AddrPort
	EnforceRecorder bool
	RecordInput     bool
}

// Reasons for refusing a login, as shown in SSH banners.
const (
	ReasonNotPermitted = "not permitted to this node"
)

// ReasonUser is the refusal for a requested user no rule maps.
func ReasonUser(user string) string {
	return fmt.Sprintf("policy does not permit SSH as user %q", user)
}

// ReasonNoLocalUser is the refusal for a mapped account that does not exist.
func ReasonNoLocalUser(user string) string { return fmt.Sprintf("local user %q not found", user) }

// ReasonBadUser is the refusal for a requested name CheckUserName refused with err.
func ReasonBadUser(err error) string { return "invalid SSH user name: " + err.Error() }

// ReasonUIDZero is the refusal for a uid-0 account no rule lists by name or as root.
func ReasonUIDZero(user string) string {
	return fmt.Sprintf("local user %q has uid 0 (root), and no rule lists it or root", user)
}

// AcceptsEnv reports whether the client may set environment variable name.
func (v Verdict) AcceptsEnv(name string) bool {
	for _, p := range v.AcceptEnv {
		if globMatch(p, name) {
			return true
		}
	}
	return false
}

func globMatch(pat, s string) bool {
	if pat == "" {
		return s == ""
	}
	switch pat[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if globMatch(pat[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && globMatch(pat[1:], s[1:])
	}
	return s != "" && s[0] == pat[0] && globMatch(pat[1:], s[1:])
}

// MapUser applies a rule's user map to a requested login. A name CheckUserName refuses
// maps to nothing.
func MapUser(m map[string]string, req string) (string, bool) {
	if CheckUserName(req) != nil {
		return "", false
	}
	v, ok := m[req]
	if !ok {
		if req == "root" {
			return "", false // root only when listed
		}
		v, ok = m["*"]
	}
	if !ok || v == "" {
		return "", false
	}
	if v == "=" {
		if req == "root" {
			return "", false
		}
		v = req
	}
	return v, true
}

// Account is a local account as the destination's account database gives it.
type Account struct {
	Name string // the account's own name in the database
	UID  uint32
}

// LookupAccount finds the local account name; ok is false when there is none.
type LookupAccount func(name string) (acct Account, ok bool)

// mayBeRoot reports whether a rule's user map permits the uid-0 account local: only a map
// that lists root, or lists local by its own name (never "*" → "=").
func mayBeRoot(m map[string]string, local string) bool {
	if m["root"] == "root" {
		return true
	}
	v, listed := m[local]
	return listed && v == local
}

// Decide runs first-match over rules already filtered to the source. A requested name
// CheckUserName refuses is rejected before any rule or lookup. With lookup, the mapped
// account must exist under exactly that name, and an account with uid 0 is root whatever
// it is called: a rule allows it only when it lists root or that account by name, so
// autogroup:nonroot never reaches a second uid-0 account such as "toor".
func Decide(rules []SSHRule, req string, lookup LookupAccount) Verdict {
	if err := CheckUserName(req); err != nil {
		return Verdict{Action: Reject, Rule: -1, Reason: ReasonBadUser(err)}
	}
	if len(rules) == 0 {
		return Verdict{Action: Reject, Rule: -1, Reason: ReasonNotPermitted}
	}
	rootRefused := ""
	for _, r := range rules {
		local, ok := MapUser(r.Users, req)
		if !ok {
			continue
		}
		v := Verdict{Action: r.Action, LocalUser: local, Rule: r.Rule, Origin: r.Origin, AcceptEnv: r.AcceptEnv,
			Recorders: r.Recorders, EnforceRecorder: r.EnforceRecorder, RecordInput: r.RecordInput}
		if lookup != nil {
			acct, found := lookup(local)
			switch {
			case !found:
				return Verdict{Action: Reject, Rule: r.Rule, Origin: r.Origin, Reason: ReasonNoLocalUser(local)}
			case acct.Name != local:
				return Verdict{Action: Reject, Rule: r.Rule, Origin: r.Origin,
					Reason: fmt.Sprintf("local user %q resolves to an account named %q", local, acct.Name)}
			case acct.UID == 0 && !mayBeRoot(r.Users, local):
				rootRefused = local
				continue // this rule does not give root; a later one may
			}
		}
		if r.Action == Check {
			v.CheckPeriod = r.CheckPeriod
			v.Reason = fmt.Sprintf("re-authentication required to log in as %q (%s)", local, periodText(r.CheckPeriod))
		} else {
			v.Reason = fmt.Sprintf("permitted to log in as %q", local)
		}
		return v
	}
	if rootRefused != "" {
		return Verdict{Action: Reject, Rule: -1, Reason: ReasonUIDZero(rootRefused)}
	}
	return Verdict{Action: Reject, Rule: -1, Reason: ReasonUser(req)}
}

func periodText(d time.Duration) string {
	switch {
	case d == 0:
		return "on every login"
	case d%time.Hour == 0:
		return fmt.Sprintf("valid for %dh", d/time.Hour)
	}
	return "valid for " + d.String()
}

// SSHVerdict decides a login to this node from overlay address src as user
// req. lookup, if non-nil, finds local accounts (see Decide).
func (nr *NodeRules) SSHVerdict(src netip.Addr, req string, lookup LookupAccount) Verdict {
	src = src.Unmap()
	var cand []SSHRule
	for _, r := range nr.SSH {
		if slices.Contains(r.Principals, src) {
			cand = append(cand, r)
		}
	}
	return Decide(cand, req, lookup)
}
