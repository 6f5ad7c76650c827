package controlws

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"

	"tsconnect/key"
	"tsconnect/policy/rules"
)

// Message types. Requests carry an ID that their response echoes; a map stream's
// responses all echo the ID of its MapRequest.
const (
	TypeRegister         = "register"
	TypeRegisterResponse = "registerResponse"
	TypeMapRequest       = "mapRequest"
	TypeMapResponse      = "mapResponse"
	TypeUpdate           = "update"
	TypeLogout           = "logout"
	TypeOK               = "ok"
	TypeError            = "error"
)

// Envelope is the JSON object every application message travels in. Body must be one
// JSON value (as json.Marshal makes it): it is framed as it is, not re-encoded.
type Envelope struct {
	V    int             `json:"v"`
	Type string          `json:"type"`
	ID   uint64          `json:"id,omitempty"`
	Body json.RawMessage `json:"body,omitempty"`
}

// RegisterRequest asks control to bind this machine to NodeKey as a node, using AuthKey.
// Registering again with the node key already bound to this machine succeeds without
// consuming a key.
//
// Interactive set and no AuthKey (and no live node on this machine) asks for an interactive
// login: control answers TypeLoginURL, then the registerResponse once a user signed in at
// that URL (the node is then that user's, untagged; Ephemeral as asked), or an error.
//
// AuthKey is at most MaxAuthKeyLen bytes; Hostinfo must pass Validate.
type RegisterRequest struct {
	AuthKey     string     `json:"authKey,omitempty"`
	NodeKey     key.Public `json:"nodeKey"`
	Hostinfo    Hostinfo   `json:"hostinfo"`
	Interactive bool       `json:"interactive,omitempty"`
	// Ephemeral asks for an ephemeral node; only an interactive login honours it (an auth
	// key decides for itself).
	Ephemeral bool `json:"ephemeral,omitempty"`
	// Reauth re-authenticates a node that is logged in (tsconnect login): control checks the
	// auth key or interactive sign-in even so, and restarts the node key's lifetime. The
	// auth key or the user who signs in must own the node (an admin, for a tagged node).
	// A server that does not know the field rotates the key without re-authenticating.
	Reauth bool `json:"reauth,omitempty"`
}

// MaxAuthKeyLen bounds RegisterRequest.AuthKey (control's keys are about 60 bytes).
const MaxAuthKeyLen = 256

// RegisterResponse reports the node control made.
type RegisterResponse struct {
	Node Node        `json:"node"`
	User UserProfile `json:"user"`
}

// MapRequest starts the map stream for the node bound to NodeKey on this machine.
type MapRequest struct {
	NodeKey  key.Public `json:"nodeKey"`
	Hostinfo Hostinfo   `json:"hostinfo"`
}

// MapResponse is one message of a map stream: the first holds Full, later ones deltas.
// A client applies them in order; see (*NetworkMap).Apply.
type MapResponse struct {
	Full *NetworkMap `json:"full,omitempty"`
	// Self replaces the node's own entry when non-nil.
	Self *Node `json:"self,omitempty"`
	// PeersChanged holds peers that are new or whose entry changed (whole entries).
	PeersChanged []Node `json:"peersChanged,omitempty"`
	// PeersRemoved holds IDs of peers that are gone.
	PeersRemoved []int64       `json:"peersRemoved,omitempty"`
	Users        []UserProfile `json:"users,omitempty"`
	// Rules, when non-nil, replace the node's packet filter and SSH rules (version
	// VersionRulesDelta on; control sends older clients a full map instead).
	Rules *MapRules `json:"rules,omitempty"`
	// FilterDelta, when non-nil, changes the sources of some rules of the node's packet
	// filter and leaves the rest of its rules as they are (version VersionFilterDelta on;
	// control sends older clients Rules or a full map instead). Never with Rules.
	FilterDelta []SrcDelta `json:"filterDelta,omitempty"`
	// RecordFromDelta, when non-nil, changes a recorder's RecordFrom (version
	// VersionRecordFromDelta on; control sends older clients Rules instead). Never with
	// Rules; it may come with FilterDelta.
	RecordFromDelta *AddrDelta `json:"recordFromDelta,omitempty"`
	// KeepAlive marks an otherwise empty message that keeps the stream's path warm.
	KeepAlive bool `json:"keepAlive,omitempty"`
}

// MapRules is a map delta's new rules for the node: both replace what it had.
type MapRules struct {
	PacketFilter *rules.Filter   `json:"packetFilter"`
	SSHRules     []rules.SSHRule `json:"sshRules"`
	// RecordFrom replaces NetworkMap.RecordFrom (version 5 on).
	RecordFrom []netip.Addr `json:"recordFrom,omitempty"`
}

// Update replaces the node's Hostinfo while a map stream runs.
type Update struct {
	Hostinfo Hostinfo `json:"hostinfo"`
}

// Error codes a program can switch on.
const (
	CodeBadRequest     = "bad_request"
	CodeInvalidKey     = "invalid_key"      // no such auth key
	CodeExpiredKey     = "expired_key"      // auth key past its expiry
	CodeUsedKey        = "used_key"         // single-use auth key already consumed
	CodeRevokedKey     = "revoked_key"      // auth key revoked by an admin
	CodeNodeKeyInUse   = "node_key_in_use"  // node key bound to another machine
	CodeNotRegistered  = "not_registered"   // this machine has no node with that key: register first
	CodeNodeDeleted    = "node_deleted"     // an admin deleted the node
	CodeLoginExpired   = "login_expired"    // nobody completed the interactive login in time
	CodeNodeKeyExpired = "node_key_expired" // the node's key expired: re-authenticate (tsconnect login)
	CodeInternal       = "internal"
	CodeTooMany        = "too_many" // a limit on pending logins or checks is reached: finish one, or wait
	CodeUnsupportedVer = "unsupported_version"
)

// Error is the body of a TypeError message and the error the client returns for it.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return fmt.Sprintf("control: %s (%s)", e.Message, e.Code) }

// Apply folds a delta into nm. A response holding Full replaces nm entirely.
// Apply never writes into slices nm shared before, so maps handed out earlier stay intact.
// A delta from the network must pass CheckDelta first (WatchMaps checks it): Apply skips
// filter changes that do not fit nm.
func (nm *NetworkMap) Apply(r *MapResponse) {
	if r.Full != nil {
		*nm = *r.Full
		return
	}
	nm.Peers = slices.Clone(nm.Peers)
	nm.Users = slices.Clone(nm.Users)
	if r.Self != nil {
		nm.Self = *r.Self
	}
	if r.Rules != nil {
		nm.PacketFilter, nm.SSHRules, nm.RecordFrom = r.Rules.PacketFilter, r.Rules.SSHRules, r.Rules.RecordFrom
	}
	if r.FilterDelta != nil && nm.PacketFilter != nil {
		f := applyFilterDelta(*nm.PacketFilter, r.FilterDelta)
		nm.PacketFilter = &f
	}
	if r.RecordFromDelta != nil {
		nm.RecordFrom = applyRecordFromDelta(nm.RecordFrom, r.RecordFromDelta)
	}
	if len(r.PeersRemoved) > 0 {
		gone := make(map[int64]bool, len(r.PeersRemoved))
		for _, id := range r.PeersRemoved {
			gone[id] = true
		}
		kept := make([]Node, 0, len(nm.Peers))
		for _, p := range nm.Peers {
			if !gone[p.ID] {
				kept = append(kept, p)
			}
		}
		nm.Peers = kept
	}
	for _, c := range r.PeersChanged {
		replaced := false
		for i := range nm.Peers {
			if nm.Peers[i].ID == c.ID {
				nm.Peers[i], replaced = c, true
				break
			}
		}
		if !replaced {
			nm.Peers = append(nm.Peers, c)
		}
	}
	for _, u := range r.Users {
		replaced := false
		for i := range nm.Users {
			if nm.Users[i].ID == u.ID {
				nm.Users[i], replaced = u, true
				break
			}
		}
		if !replaced {
			nm.Users = append(nm.Users, u)
		}
	}
}
