// Package store defines what the coordination server keeps on disk: users, auth keys, nodes
// and settings, behind a transactional interface that an SQLite or PostgreSQL backend implements.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"time"

	"tsconnect/key"
)

// ErrNotFound is returned (possibly wrapped) when a looked-up row does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrConflict is returned (possibly wrapped) when a write would break a uniqueness rule,
// such as a second user with the same email or a second live node with the same name.
var ErrConflict = errors.New("store: conflict")

// Store is a transactional store. Implementations must give Update transactions
// serializable isolation: two Updates that read and then write the same rows behave as if
// run one after the other (SQLite: one writer at a time; PostgreSQL: SERIALIZABLE with retry).
type Store interface {
	// Read runs fn in a read-only transaction.
	Read(ctx context.Context, fn func(Tx) error) error
	// Update runs fn in a read-write transaction that commits, durably, when fn returns nil
	// and rolls back when it returns an error, which Update then returns unchanged.
	Update(ctx context.Context, fn func(Tx) error) error
	// Close releases the store. Transactions in flight may fail.
	Close() error
}

// Tx is one transaction. It is valid only during the function it was passed to.
type Tx interface {
	// Setting returns a network-wide setting, or ErrNotFound.
	Setting(name string) (string, error)
	// SetSetting creates or replaces a setting.
	SetSetting(name, value string) error

	// InsertUser adds u and sets u.ID. ErrConflict if the email is taken.
	InsertUser(u *User) error
	// UserByID returns a user or ErrNotFound.
	UserByID(id int64) (User, error)
	// UserByEmail returns a user or ErrNotFound.
	UserByEmail(email string) (User, error)
	// Users returns all users by ID.
	Users() ([]User, error)
	// UserByOIDC returns the user bound to an OpenID Connect identity (issuer and subject),
	// or ErrNotFound.
	UserByOIDC(issuer, subject string) (User, error)
	// SetUserOIDC binds user id to an OpenID Connect identity. ErrConflict if another user
	// holds it, ErrNotFound if there is no such user.
	SetUserOIDC(userID int64, issuer, subject string) error
	// SetUserEmail changes user id's email. ErrConflict if another user has it.
	SetUserEmail(userID int64, email string) error
	// SetUserGroups replaces user id's groups at the identity provider.
	SetUserGroups(userID int64, groups []string) error
	// DeleteUser removes user id for good; auth keys and deleted nodes that referred to it
	// keep no owner. ErrNotFound if there is no such user, ErrConflict while a live node
	// still belongs to it (delete those first).
	DeleteUser(id int64) error

	// InsertAuthKey adds k and sets k.ID. ErrConflict if the prefix is taken.
	InsertAuthKey(k *AuthKey) error
	// AuthKeyByID returns an auth key or ErrNotFound.
	AuthKeyByID(id int64) (AuthKey, error)
	// AuthKeyByPrefix returns the auth key with that display prefix or ErrNotFound.
	AuthKeyByPrefix(prefix string) (AuthKey, error)
	// AuthKeys returns all auth keys by ID.
	AuthKeys() ([]AuthKey, error)
	// UpdateAuthKey writes k's Used, UsedAt and Revoked fields.
	UpdateAuthKey(k *AuthKey) error

	// InsertNode adds n and sets n.ID. ErrConflict if its name, machine key, node key or
	// addresses clash with a live node's.
	InsertNode(n *Node) error
	// UpdateNode writes every mutable field of n (all but ID and Created).
	UpdateNode(n *Node) error
	// NodeByID returns a node, deleted or not, or ErrNotFound.
	NodeByID(id int64) (Node, error)
	// NodeByMachineKey returns the newest node of a machine, deleted or not, or ErrNotFound.
	// A machine has at most one live node, and it is always its newest.
	NodeByMachineKey(k key.Public) (Node, error)
	// NodeByNodeKey returns the live node holding node key k, or ErrNotFound.
	NodeByNodeKey(k key.Public) (Node, error)
	// Nodes returns all live (not deleted) nodes by ID.
	Nodes() ([]Node, error)
	// NameInUse reports whether a live node has that name.
	NameInUse(name string) (bool, error)
	// AddrInUse reports whether a live node has IPv4 or IPv6 address a.
	AddrInUse(a netip.Addr) (bool, error)
	// SetLastSeen records when a node was last connected.
	SetLastSeen(id int64, at time.Time) error
	// SetSeen records a node's connection as UpdateNode would, writing only n.LastSeen and
	// n.Hostinfo and clearing n.Expired: columns no unique constraint covers, so it is never
	// refused with ErrConflict (and costs PostgreSQL no savepoint). n must not be logged out.
	SetSeen(n *Node) error
	// NodesOfKeys is NodeByNodeKey(nk) and NodeByMachineKey(mk) in one statement (a
	// registration's two lookups); a zero ID stands for ErrNotFound.
	NodesOfKeys(nk, mk key.Public) (byNodeKey, byMachine Node, err error)
	// NodesByMachineKeys returns NodeByMachineKey of each of ks that has a node, keyed by
	// machine key, in one statement per few hundred keys (a batch of streams opening).
	NodesByMachineKeys(ks []key.Public) (map[key.Public]Node, error)
	// SetSeenAll is SetSeen of each of ns, in one statement per few hundred nodes. A node
	// missing or logged out fails it whole.
	SetSeenAll(ns []*Node) error
	// PurgeNode removes a node row for good (ephemeral nodes leave no trace).
	PurgeNode(id int64) error

	// PasswordHash returns user id's password hash (a PHC string), "" when none is set,
	// or ErrNotFound when there is no such user.
	PasswordHash(userID int64) (string, error)
	// SetPasswordHash replaces user id's password hash ("" removes the password).
	SetPasswordHash(userID int64, hash string) error

	// InsertSignIn adds a console sign-in. ErrConflict if its hash is taken.
	InsertSignIn(si *SignIn) error
	// SignIn returns the sign-in whose token hashes to hash, or ErrNotFound.
	SignIn(hash []byte) (SignIn, error)
	// TouchSignIn records activity on a sign-in.
	TouchSignIn(hash []byte, at time.Time) error
	// DeleteSignIn removes one sign-in (no error if it is already gone).
	DeleteSignIn(hash []byte) error
	// DeleteSignIns removes every sign-in of a user and returns how many there were.
	// Deleting a user removes its sign-ins too.
	DeleteSignIns(userID int64) (int, error)
	// DeleteIdleSignIns removes sign-ins last active before cutoff.
	DeleteIdleSignIns(cutoff time.Time) (int, error)

	// InsertAPIToken adds an API token and sets its ID. ErrConflict if its hash is taken.
	InsertAPIToken(t *APIToken) error
	// APITokenByHash returns the token whose secret hashes to hash, or ErrNotFound.
	APITokenByHash(hash []byte) (APIToken, error)
	// APITokens returns every API token (revoked and expired ones too), by ID. Deleting a
	// user removes theirs.
	APITokens() ([]APIToken, error)
	// RevokeAPIToken marks token id revoked; ErrNotFound if there is none.
	RevokeAPIToken(id int64) error
	// TouchAPIToken records the use of token id.
	TouchAPIToken(id int64, at time.Time) error

	// InsertAuthEvent appends e to the audit log and sets e.ID. An event with a RecordID
	// the log already has for its RecordNode is refused with ErrConflict (the transaction
	// stays usable).
	InsertAuthEvent(e *AuthEvent) error
	// AuthEvents returns up to limit audit events, newest first, with IDs below before
	// (0: from the newest).
	AuthEvents(before int64, limit int) ([]AuthEvent, error)
	// AuthEventsAfter returns up to limit audit events with IDs above after, oldest first,
	// none before since (the zero time: no bound).
	AuthEventsAfter(after int64, since time.Time, limit int) ([]AuthEvent, error)
	// DeleteAuthEventsBefore removes the audit events older than cutoff and returns how many.
	DeleteAuthEventsBefore(cutoff time.Time) (int, error)
	// SetLastAuth records user id's last successful authentication by method.
	SetLastAuth(userID int64, method string, at time.Time) error
	// LastAuth returns user id's most recent successful authentication by any method;
	// ErrNotFound when there is none.
	LastAuth(userID int64) (at time.Time, method string, err error)

	// InsertCheck adds a held SSH login's check. ErrConflict if its hash is taken.
	InsertCheck(c *Check) error
	// CheckByHash returns the check whose ID hashes to hash, expired or not, or ErrNotFound.
	CheckByHash(hash []byte) (Check, error)
	// ChecksFor returns the checks agent node dst holds for logins from node src as
	// localUser, expired ones too, newest first.
	ChecksFor(dst, src int64, localUser string) ([]Check, error)
	// CountChecks counts the checks (of any state) for logins from node src, those agent
	// node dst holds, and all of them.
	CountChecks(src, dst int64) (bySrc, byDst, total int, err error)
	// DecideCheck records the verdict of check hash while it is pending; ErrNotFound when
	// there is no such check or it is decided already.
	DecideCheck(hash []byte, verdict, message string) error
	// DeleteCheck removes a check (no error if it is already gone).
	DeleteCheck(hash []byte) error

	// InsertLogin adds a pending interactive login. ErrConflict if its hash is taken.
	InsertLogin(l *Login) error
	// LoginByHash returns the login whose ID hashes to hash, expired or not, or ErrNotFound.
	LoginByHash(hash []byte) (Login, error)
	// LoginsByMachineKey returns the pending logins of machine k, expired ones too, newest first.
	LoginsByMachineKey(k key.Public) ([]Login, error)
	// CountLogins counts the pending logins started from source, and all of them.
	CountLogins(source string) (bySource, total int, err error)
	// DeleteLogin removes a login; ErrNotFound if it is already gone.
	DeleteLogin(hash []byte) error

	// DeleteExpiredFlows removes the checks and logins that expired at or before now, and
	// returns how many.
	DeleteExpiredFlows(now time.Time) (int, error)

	// TryLease takes lease name (a piece of background work) for holder until now+ttl when
	// it is free, expired at now, or holder's already, and reports whether holder has it.
	// Of replicas racing for one lease, one wins until its lease expires or is released.
	TryLease(name, holder string, now time.Time, ttl time.Duration) (bool, error)
	// ReleaseLease gives lease name up if holder has it (no error otherwise).
	ReleaseLease(name, holder string) error

	// ReserveFailure counts an attempt of key in scope (a login rate limit) as a failure
	// at now, unless key has max failures within window before now: then it counts
	// nothing and returns how long until one leaves the window. Failures older than window
	// are dropped (all scopes: callers use one window); a scope holding failures of
	// maxKeys keys (0: no bound) drops its oldest tenth of failures to take a new key.
	ReserveFailure(scope, key string, now time.Time, window time.Duration, max, maxKeys int) (wait time.Duration, err error)
	// ReleaseFailure takes back key's latest failure (an attempt that passed or was not checked).
	ReleaseFailure(scope, key string) error
	// ResetFailures forgets key's failures (after a successful login).
	ResetFailures(scope, key string) error
}

// MaxFailureKey bounds the length of a rate limit's scope and key.
const MaxFailureKey = 512

// MaxLeaseName bounds the length of a lease's name and of its holder's.
const MaxLeaseName = 200

// Check is an SSH login a check rule holds on an agent, waiting for its user to
// re-authenticate; once decided it stays until the agent has the verdict or it expires.
// Only a hash of the ID in its URL is kept.
type Check struct {
	Hash      []byte // SHA-256 of the ID in the check's URL
	SrcNode   int64  // the node the login comes from
	DstNode   int64  // the agent's node holding the login
	UserID    int64  // who must re-authenticate
	LocalUser string
	// Info is what control shows about the check (its JSON, opaque to the store).
	Info    json.RawMessage
	Created time.Time
	Expires time.Time
	// Verdict is "" while pending, else the verdict ("accept", "reject") and its Message.
	Verdict, Message string
}

// Login is a node waiting for a user to sign in at its URL and own it (an interactive
// register). Only a hash of the ID in its URL is kept.
type Login struct {
	Hash       []byte // SHA-256 of the ID in the login's URL
	MachineKey key.Public
	NodeKey    key.Public
	Source     string // the client's address as control's per-address limits count it
	// Request is the node's register request (its JSON, opaque to the store).
	Request json.RawMessage
	Created time.Time
	Expires time.Time
}

// SignIn is a person signed in to the console. Only a hash of its cookie token is kept.
type SignIn struct {
	Hash     []byte // SHA-256 of the cookie token
	UserID   int64
	Created  time.Time
	LastSeen time.Time
}

// APIToken is a user's token for scripts and CI. Only a hash of its secret is kept.
type APIToken struct {
	ID          int64
	Hash        []byte // SHA-256 of the secret
	UserID      int64
	Scopes      []string
	Description string
	Created     time.Time
	Expires     time.Time
	LastUsed    time.Time // zero when never used
	Revoked     bool
}

// AuthEvent is one entry of the audit log of authentications.
type AuthEvent struct {
	ID     int64
	Time   time.Time
	UserID int64  // 0 when the attempt named no known user
	Email  string // the user's email, or what the attempt gave
	Method string // "password", "oidc", "ssh"
	Kind   string // "signin", "check", "node-login", "ssh-accept", …
	OK     bool
	Detail string
	// SSH is, for an SSH login decision an agent reported, what control keeps of the login
	// (its JSON, opaque to the store); nil otherwise.
	SSH json.RawMessage
	// RecordNode and RecordID, when RecordID is set, name the agent's record the event
	// came from: the log holds each (RecordNode, RecordID) at most once.
	RecordNode int64
	RecordID   string
}

// Role is a user's role.
type Role string

// Roles.
const (
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
)

// User is a person of the network.
type User struct {
	ID          int64
	Email       string
	DisplayName string
	Role        Role
	Created     time.Time
	// OIDCIssuer and OIDCSubject identify the user at an OpenID Provider; "" when the user
	// never signed in with one. At most one user holds an issuer and subject.
	OIDCIssuer, OIDCSubject string
	// Groups are the user's groups at the identity provider, from their latest sign-in.
	Groups []string
}

// AuthKey is a pre-authorized registration key. Only a hash of its secret is kept.
type AuthKey struct {
	ID        int64
	Hash      []byte // SHA-256 of the whole secret
	Prefix    string // public part of the secret, for display and lookup
	UserID    int64  // owner; 0 for a key that only makes tagged nodes
	Reusable  bool
	Ephemeral bool
	Tags      []string
	Expires   time.Time // zero: never
	Used      bool
	UsedAt    time.Time
	Revoked   bool
	Created   time.Time
	// Description says what the key is for, as its creator wrote it ("" when none).
	Description string
}

// Node is a registered machine.
type Node struct {
	ID         int64
	Name       string
	MachineKey key.Public
	NodeKey    key.Public
	UserID     int64 // 0 when tagged
	Tags       []string
	IPv4       netip.Addr
	IPv6       netip.Addr
	Ephemeral  bool
	// LoggedOut marks a node whose machine logged out: it must register with a new key.
	LoggedOut bool
	// Expired is when an admin expired the node's key; zero otherwise. An expired node is
	// logged out until it registers again: UpdateNode clears Expired when LoggedOut is false.
	Expired time.Time
	// KeyExpiry is when the node key stops being accepted unless the node re-authenticates
	// (control sets it from the network's key lifetime at each authentication); zero when
	// never set. KeyExpiryDisabled, set by an admin, makes the key never expire.
	KeyExpiry         time.Time
	KeyExpiryDisabled bool
	Hostinfo          json.RawMessage // controlws.Hostinfo as JSON; nil when never reported
	Created           time.Time
	LastSeen          time.Time
	Deleted           time.Time // zero while live
}
