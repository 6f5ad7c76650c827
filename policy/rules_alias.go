package policy

import "tsconnect/policy/rules"

// The compiled forms live in package rules (no parser, so the wasm can carry them); these
// names keep the policy API whole.
type (
	NodeRules  = rules.NodeRules
	Filter     = rules.Filter
	FilterRule = rules.FilterRule
	PortRange  = rules.PortRange
	Proto      = rules.Proto
	Action     = rules.Action
	SSHRule    = rules.SSHRule
	Verdict    = rules.Verdict
	// Account and LookupAccount describe the destination's local accounts to SSHAccess.
	Account       = rules.Account
	LookupAccount = rules.LookupAccount
)

// SSH actions.
const (
	Accept = rules.Accept
	Check  = rules.Check
	Reject = rules.Reject
)

// IP protocols the policy names.
const (
	ProtoICMP   = rules.ProtoICMP
	ProtoIGMP   = rules.ProtoIGMP
	ProtoTCP    = rules.ProtoTCP
	ProtoUDP    = rules.ProtoUDP
	ProtoGRE    = rules.ProtoGRE
	ProtoESP    = rules.ProtoESP
	ProtoAH     = rules.ProtoAH
	ProtoICMPv6 = rules.ProtoICMPv6
	ProtoSCTP   = rules.ProtoSCTP
)

// ReasonNotPermitted is the refusal for a source no rule admits.
const ReasonNotPermitted = rules.ReasonNotPermitted

// AllPorts is the range "*".
var AllPorts = rules.AllPorts

// ReasonUser is the refusal for a requested user no rule maps.
func ReasonUser(user string) string { return rules.ReasonUser(user) }

// ReasonNoLocalUser is the refusal for a mapped account that does not exist.
func ReasonNoLocalUser(user string) string { return rules.ReasonNoLocalUser(user) }
