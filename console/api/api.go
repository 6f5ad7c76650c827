// Package api is the wire form of the one admin API under Prefix: the JSON bodies of its
// requests and answers and its error shape. Package console serves it; adminclient calls it.
package api

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Prefix is where the admin API is served, on the HTTP listener and on the admin socket.
const Prefix = "/api/v1"

// Error is the body of every error answer, whatever the status (400 to 503) and however
// the caller authenticated: {"code": "not_found", "error": "no user 7"}.
type Error struct {
	Code    string `json:"code"`  // one of the Code constants
	Message string `json:"error"` // a sentence for a person
	// Problems lists every problem of a refused policy (code bad_policy).
	Problems []Problem `json:"problems,omitempty"`
	// CurrentVersion is the policy version in force when an If-Match named another
	// (code stale_version).
	CurrentVersion *int64 `json:"currentVersion,omitempty"`
}

// Error codes.
const (
	CodeUnauthenticated   = "unauthenticated"    // 401: no or an ended sign-in, a bad API token
	CodeForbidden         = "forbidden"          // 403: the caller's role may not
	CodeInsufficientScope = "insufficient_scope" // 403: the API token's scopes do not cover the route
	CodeCSRF              = "csrf"               // 403: a cookie request without CSRF token or from another origin
	CodeBadLogin          = "bad_login"          // 401: wrong email or password
	CodeRateLimited       = "rate_limited"       // 429, with Retry-After
	CodeNotAllowed        = "not_allowed"        // 403: the policy allows no such SSH login
	CodeBadPolicy         = "bad_policy"         // 400, with Problems
	CodeBadRequest        = "bad_request"        // 400
	CodeNotFound          = "not_found"          // 404
	CodeMethodNotAllowed  = "method_not_allowed" // 405, with Allow
	CodeExists            = "exists"             // 409
	CodeStaleVersion      = "stale_version"      // 412, with CurrentVersion: nothing was written
	CodeTooLarge          = "too_large"          // 413
	CodeIfMatchRequired   = "if_match_required"  // 428: a policy write without If-Match
	CodeInternal          = "internal"           // 500
	CodeBusy              = "busy"               // 503, with Retry-After
)

// UserName names a user in a path or a body: a numeric user ID or an email. In JSON it may
// be a number or a string.
type UserName string

// UnmarshalJSON accepts a string or a number.
func (u *UserName) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*u = UserName(s)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("a user is a numeric id or an email, not %s", b)
	}
	*u = UserName(strconv.FormatInt(n, 10))
	return nil
}

// User is a person of the network.
type User struct {
	ID          int64  `json:"id"`
	Email       string `json:"email"`
	DisplayName string `json:"displayName"`
	Role        string `json:"role"` // "admin" or "member"
}

// UserRef names a user briefly.
type UserRef struct {
	ID    int64  `json:"id"`
	Email string `json:"email"`
}

// Me is the answer to GET /me, POST /login and PUT /me/password.
type Me struct {
	User User `json:"user"`
	// CSRFToken goes back in X-CSRF-Token on every state change of a cookie sign-in; empty
	// for the admin socket and API tokens, which need none.
	CSRFToken string `json:"csrfToken,omitempty"`
	// Via says how the caller authenticated: "sign-in", "admin socket" or "API token".
	Via string `json:"via"`
	// Scopes are an API token's scopes (nil otherwise: everything the role allows).
	Scopes []string `json:"scopes,omitempty"`
	// RecordingViewer says the user may watch session recordings (an admin, or named by the
	// policy's recordingViewers): the console shows its Recordings page.
	RecordingViewer bool `json:"recordingViewer,omitempty"`
}

// UserList is the answer to GET /users.
type UserList struct {
	Users []User `json:"users"`
}

// CreateUserRequest is the body of POST /users.
type CreateUserRequest struct {
	Email    string `json:"email"`
	Role     string `json:"role,omitempty"`     // "" means member
	Password string `json:"password,omitempty"` // the console password; "" means none
}

// DeletedUser is the answer to DELETE /users/{user}.
type DeletedUser struct {
	User         User    `json:"user"`
	DeletedNodes []int64 `json:"deletedNodes"`
	RevokedKeys  []int64 `json:"revokedKeys"`
}

// SetPasswordRequest is the body of PUT /users/{user}/password.
type SetPasswordRequest struct {
	Password string `json:"password"`
}

// Node is a machine of the network. Node-supplied strings (name, OS, tags) are as the
// node sent them: escape them before display.
type Node struct {
	ID        int64    `json:"id"`
	Name      string   `json:"name"`
	Hostname  string   `json:"hostname"`  // the host name the machine reports
	Key       string   `json:"key"`       // its node key (WireGuard identity), 64 hex digits
	Addresses []string `json:"addresses"` // its IPv4 and IPv6 overlay addresses
	OS        string   `json:"os"`
	Owner     *UserRef `json:"owner"` // null when tagged
	Tags      []string `json:"tags"`
	SSH       bool     `json:"ssh"`
	// SSHTools are the terminal multiplexers its SSH users can attach to ("tmux", "screen").
	SSHTools []string `json:"sshTools"`
	// VNC: it forwards overlay port 5900 to a VNC server (tsconnect up --vnc). VNCAllowed: the
	// acls let the caller's browser node reach that port (the console offers "VNC…" then).
	VNC        bool       `json:"vnc"`
	VNCAllowed bool       `json:"vncAllowed"`
	Online     bool       `json:"online"`   // it holds a map stream with control now
	LastSeen   *time.Time `json:"lastSeen"` // offline: when it lost control; online: when it connected; null: never
	Ephemeral  bool       `json:"ephemeral"`
	Expired    bool       `json:"expired"`
	// KeyExpiry is when its node key expires unless it re-authenticates; null: never
	// (KeyExpiryDisabled). KeyExpired: the key passed it, so the node is in no map.
	KeyExpiry         *time.Time `json:"keyExpiry"`
	KeyExpired        bool       `json:"keyExpired"`
	KeyExpiryDisabled bool       `json:"keyExpiryDisabled"`
}

// SetKeyExpiryRequest is the body of PUT /nodes/{id}/key-expiry: Disabled makes the node's
// key never expire; false makes it expire again at the expiry it had.
type SetKeyExpiryRequest struct {
	Disabled bool `json:"disabled"`
}

// NodeKeyExpiry is the body and answer of /settings/node-key-expiry: the network's node-key
// lifetime in seconds (each node's key expires that long after it authenticated).
type NodeKeyExpiry struct {
	Seconds int64 `json:"seconds"`
}

// NodeChanges is each message of GET /events?changes=1 (Type "changes"): the IDs of the
// nodes that changed or were added (Changed) and that were deleted (Removed) since the
// previous message, and how many nodes there are (Total). The first message lists no IDs.
type NodeChanges struct {
	Type    string  `json:"type"`
	Changed []int64 `json:"changed"`
	Removed []int64 `json:"removed"`
	Total   int     `json:"total"`
}

// NodeList is the answer to GET /nodes and each message of GET /events (Type "nodes").
type NodeList struct {
	Type  string `json:"type,omitempty"`
	Nodes []Node `json:"nodes"`
	// Total is how many nodes match the query of GET /nodes (all pages); Next, when
	// non-zero, is the after= of the next page.
	Total int   `json:"total,omitempty"`
	Next  int64 `json:"next,omitempty"`
}

// SetTagsRequest is the body of PUT /nodes/{id}/tags.
type SetTagsRequest struct {
	Tags []string `json:"tags"` // empty untags the node
	// Owner owns the node when a tagged one is untagged; empty means the caller.
	Owner UserName `json:"owner,omitempty"`
	// By names the user the change is made for (admins only): unless an admin, they must
	// own every tag added or removed. Empty means the caller.
	By UserName `json:"by,omitempty"`
}

// SSHUser is a local account the caller may log in as on a node.
type SSHUser struct {
	Name   string `json:"name"`
	Action string `json:"action"` // "accept" or "check"
}

// SSHUsers is the answer to GET /nodes/{id}/ssh-users.
type SSHUsers struct {
	Users  []SSHUser `json:"users"`
	Reason string    `json:"reason,omitempty"` // why there are none
}

// SSHLaunchRequest is the body of POST /nodes/{id}/ssh-launch.
type SSHLaunchRequest struct {
	User string `json:"user"` // the local account
}

// SSHLaunch is what one browser SSH session needs: a single-use ephemeral auth key of the
// caller, the control URL, the target and the local account.
type SSHLaunch struct {
	AuthKey    string    `json:"authKey"`
	ControlURL string    `json:"controlURL"`
	Host       string    `json:"host"`
	User       string    `json:"user"`
	Expires    time.Time `json:"expires"`
}

// VNCLaunch is what one browser VNC session needs: a single-use ephemeral auth key of the
// caller, the control URL and the target, whose port 5900 the browser node dials.
type VNCLaunch struct {
	AuthKey    string    `json:"authKey"`
	ControlURL string    `json:"controlURL"`
	Host       string    `json:"host"`
	Expires    time.Time `json:"expires"`
}

// RecordingsLaunch is what the Recordings page needs to read recordings over the overlay: a
// single-use ephemeral auth key of the caller (its browser node joins with it, as an SSH
// launch's does), the control URL, and the recorder nodes to read from.
type RecordingsLaunch struct {
	AuthKey    string     `json:"authKey"`
	ControlURL string     `json:"controlURL"`
	Expires    time.Time  `json:"expires"`
	Recorders  []Recorder `json:"recorders"`
}

// Recorder is a recorder node: its name and its overlay address and port (ADDR:8410).
type Recorder struct {
	Name    string `json:"name"`
	Address string `json:"address"`
}

// Key is a pre-auth key (never its secret).
type Key struct {
	ID          int64     `json:"id"`
	Prefix      string    `json:"prefix"`
	Owner       *UserRef  `json:"owner"`
	Reusable    bool      `json:"reusable"`
	Ephemeral   bool      `json:"ephemeral"`
	Tags        []string  `json:"tags"`
	Created     time.Time `json:"created"`
	Expires     time.Time `json:"expires"`
	Used        bool      `json:"used"`
	Revoked     bool      `json:"revoked"`
	Description string    `json:"description"`
}

// KeyList is the answer to GET /keys.
type KeyList struct {
	Keys []Key `json:"keys"`
}

// CreateKeyRequest is the body of POST /keys.
type CreateKeyRequest struct {
	// User owns the key's nodes; empty means the caller. Members may name only themselves.
	User        UserName `json:"user,omitempty"`
	Reusable    bool     `json:"reusable,omitempty"`
	Ephemeral   bool     `json:"ephemeral,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	ExpiresIn   int64    `json:"expiresIn,omitempty"` // seconds; 0 means 90 days
	Description string   `json:"description,omitempty"`
}

// CreatedKey is the answer to POST /keys: the secret, shown this once.
type CreatedKey struct {
	Key    Key    `json:"key"`
	Secret string `json:"secret"`
}

// Policy is a policy version: the one in force (GET /policy, with its text) or one of the
// history (GET /policy/versions, without).
type Policy struct {
	Text    string     `json:"text,omitempty"`
	Version int64      `json:"version"`
	Author  string     `json:"author"`
	Time    *time.Time `json:"time"` // null for the built-in default
	Note    string     `json:"note,omitempty"`
}

// PolicyVersions is the answer to GET /policy/versions, oldest first.
type PolicyVersions struct {
	Versions []Policy `json:"versions"`
}

// SetPolicyRequest is the body of PUT /policy and POST /policy/validate.
type SetPolicyRequest struct {
	Text string `json:"text"` // HuJSON
	// Author, if set, is kept with the version next to the caller's name.
	Author string `json:"author,omitempty"`
}

// RestorePolicyRequest is the body of POST /policy/versions/{n}/restore.
type RestorePolicyRequest struct {
	Author string `json:"author,omitempty"`
}

// PolicyCheck is the answer to POST /policy/validate when the text passes.
type PolicyCheck struct {
	OK bool `json:"ok"`
}

// Problem is one problem of a refused policy, at a place a person can find.
type Problem struct {
	Line    int    `json:"line"`   // 1-based; 0 when the problem has no single place
	Column  int    `json:"column"` // 1-based, in bytes
	Field   string `json:"field"`
	Message string `json:"message"`
}

// AuditEvent is one entry of the audit log: an authentication, or (method "ssh") an SSH
// login decision an agent reported, described by SSH.
type AuditEvent struct {
	ID     int64     `json:"id"`
	Time   time.Time `json:"time"`
	User   string    `json:"user"`
	Method string    `json:"method"`
	Kind   string    `json:"kind"`
	OK     bool      `json:"ok"`
	Detail string    `json:"detail"`
	SSH    *AuditSSH `json:"ssh,omitempty"`
}

// AuditSSH is the SSH login of an audit event: from which node (by the client's overlay
// address), on which node (the reporting agent's), as whom, by which rule, its recording,
// and for an ended session its exit code, duration and kind.
type AuditSSH struct {
	SrcNode    int64     `json:"srcNode,omitempty"`
	SrcName    string    `json:"srcName,omitempty"`
	SrcTagged  bool      `json:"srcTagged,omitempty"`
	DstNode    int64     `json:"dstNode"`
	DstName    string    `json:"dstName"`
	Remote     string    `json:"remote"`
	SSHUser    string    `json:"sshUser,omitempty"`
	LocalUser  string    `json:"localUser,omitempty"`
	Rule       string    `json:"rule,omitempty"`
	Recording  string    `json:"recording,omitempty"`
	ExitCode   *int      `json:"exitCode,omitempty"`
	DurationMs int64     `json:"durationMs,omitempty"`
	Session    string    `json:"session,omitempty"`
	Reported   time.Time `json:"reported"`
}

// AuditEvents is the answer to GET /audit, newest first.
type AuditEvents struct {
	Events []AuditEvent `json:"events"`
}

// APIToken is an API token (never its secret).
type APIToken struct {
	ID          int64      `json:"id"`
	Owner       UserRef    `json:"owner"`
	Scopes      []string   `json:"scopes"`
	Description string     `json:"description"`
	Created     time.Time  `json:"created"`
	Expires     time.Time  `json:"expires"`
	LastUsed    *time.Time `json:"lastUsed"` // null when never used
	Revoked     bool       `json:"revoked"`
}

// APITokenList is the answer to GET /api-tokens.
type APITokenList struct {
	Tokens []APIToken `json:"tokens"`
}

// CreateAPITokenRequest is the body of POST /api-tokens.
type CreateAPITokenRequest struct {
	// User owns the token; empty means the caller (the admin socket must name one). Only
	// admins name another user.
	User        UserName `json:"user,omitempty"`
	Scopes      []string `json:"scopes"`              // some of read, nodes, keys, policy, users
	ExpiresIn   int64    `json:"expiresIn,omitempty"` // seconds; 0 means 90 days
	Description string   `json:"description,omitempty"`
}

// CreatedAPIToken is the answer to POST /api-tokens: the secret, shown this once; send it
// as "Authorization: Bearer SECRET".
type CreatedAPIToken struct {
	Token  APIToken `json:"token"`
	Secret string   `json:"secret"`
}

// NodeRef names a machine.
type NodeRef struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// SSHSessionList is the answer to GET /sessions.
type SSHSessionList struct {
	Sessions []SSHSession `json:"sessions"`
}

// SSHSession is one live SSH login on a machine, as its agent reports it.
type SSHSession struct {
	Machine   NodeRef   `json:"machine"`        // where it runs
	Remote    string    `json:"remote"`         // the client's overlay address:port (DELETE /sessions/{machine}/{remote} ends it)
	From      *NodeRef  `json:"from,omitempty"` // the machine it comes from, if known
	User      *UserRef  `json:"user,omitempty"` // that machine's owner, unless it is tagged
	LocalUser string    `json:"localUser"`
	Started   time.Time `json:"started"`
	Channels  int       `json:"channels"` // open session channels (shell, exec, sftp)
	BytesIn   int64     `json:"bytesIn"`  // from the client, as encrypted on the wire
	BytesOut  int64     `json:"bytesOut"`
	Path      *SSHPath  `json:"path,omitempty"` // how the machine's traffic to the client goes; absent from an older agent
}

// PeerPathList is the answer to GET /nodes/{id}/paths.
type PeerPathList struct {
	Paths []PeerPath `json:"paths"`
}

// PeerPath is how a machine's traffic to one peer it exchanged traffic with in the last
// 30 s goes, as its agent last reported.
type PeerPath struct {
	Peer    string   `json:"peer"`              // the peer's overlay address
	Machine *NodeRef `json:"machine,omitempty"` // the peer's machine, if known
	SSHPath
}

// SSHPath is how a machine's traffic to a login's client goes, as its agent last reported
// (when the login came, went, or moved between direct and relayed, else at most 25 s old).
type SSHPath struct {
	Direct string  `json:"direct,omitempty"` // the client's UDP endpoint ("IP:PORT") while direct
	Region string  `json:"region,omitempty"` // else the DERP region's code it is relayed through
	RTTMs  float64 `json:"rttMs,omitempty"`  // the last disco round trip; absent for a client without direct paths (a browser)
}
