package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ChangeKind says what a Change is about.
type ChangeKind byte

// The kinds of change replicas announce to each other.
const (
	ChangeNode   ChangeKind = 'n' // node ID was registered, updated, deleted or purged
	ChangeUser   ChangeKind = 'u' // user ID was created, updated or deleted
	ChangePolicy ChangeKind = 'p' // a new policy version is in force (ID 0)
	ChangeKeys   ChangeKind = 'k' // auth keys changed (ID 0)
	ChangeCheck  ChangeKind = 'c' // a check held by agent node ID was decided
	ChangeMesh   ChangeKind = 'm' // the list of the replicas' relays or control URLs changed (ID 0)
	ChangeOnline ChangeKind = 'o' // node ID is online on the announcing replica (renewed)
	ChangeGone   ChangeKind = 'x' // node ID is no longer online on the announcing replica
	ChangeAll    ChangeKind = '*' // too much to list: reload everything (ID 0)
)

// MaxChanges bounds the changes one announcement lists; a transaction that makes more
// announces ChangeAll instead.
const MaxChanges = 256

// MaxOrigin bounds the length of the replica name an announcement carries.
const MaxOrigin = 64

// ChangesChannel is the PostgreSQL notification channel announcements go out on.
const ChangesChannel = "tsconnect_changes"

// Change is one committed change that other replicas must load from the store.
type Change struct {
	Kind ChangeKind
	ID   int64
}

// Announcer is implemented by the transactions of a store shared by replicas: Announce
// queues the changes for every listening replica, delivered when (and only if) the
// transaction commits.
type Announcer interface {
	Announce(origin string, changes []Change) error
}

// Listener is what a replica does with the changes other replicas announce.
type Listener struct {
	// Origin names this replica; announcements from it are not passed to Apply.
	Origin string
	// Apply is called with each announcement of another replica (named origin), in commit order.
	Apply func(origin string, changes []Change)
	// Resync is called when announcements may have been missed (after each connection
	// of the listener, the first included): the replica reloads everything.
	Resync func()
	// Logf logs a lost connection and the reconnections; nil means no logging.
	Logf func(format string, args ...any)
}

// Changes is implemented by stores several replicas share (PostgreSQL): Listen calls l's
// functions, from the calling goroutine, until ctx ends, reconnecting with back-off.
type Changes interface {
	Listen(ctx context.Context, l Listener)
}

// EncodeChanges is the payload announcing changes from origin: "origin;n12,u3,p0". Past
// MaxChanges, or with ChangeAll among them, it lists ChangeAll alone.
func EncodeChanges(origin string, changes []Change) string {
	var b strings.Builder
	b.WriteString(origin)
	b.WriteByte(';')
	if len(changes) > MaxChanges || containsAll(changes) {
		changes = []Change{{Kind: ChangeAll}}
	}
	for i, c := range changes {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte(byte(c.Kind))
		b.WriteString(strconv.FormatInt(c.ID, 10))
	}
	return b.String()
}

func containsAll(changes []Change) bool {
	for _, c := range changes {
		if c.Kind == ChangeAll {
			return true
		}
	}
	return false
}

// DecodeChanges parses an EncodeChanges payload, refusing one of more than MaxChanges
// changes, an origin longer than MaxOrigin, an unknown kind or a bad ID.
func DecodeChanges(payload string) (origin string, changes []Change, err error) {
	origin, list, ok := strings.Cut(payload, ";")
	if !ok || origin == "" || len(origin) > MaxOrigin {
		return "", nil, errors.New("store: announcement without a valid origin")
	}
	if list == "" {
		return origin, nil, nil
	}
	items := strings.Split(list, ",")
	if len(items) > MaxChanges {
		return "", nil, fmt.Errorf("store: announcement of %d changes, over %d", len(items), MaxChanges)
	}
	for _, it := range items {
		if it == "" {
			return "", nil, errors.New("store: announcement with an empty change")
		}
		k := ChangeKind(it[0])
		switch k {
		case ChangeNode, ChangeUser, ChangePolicy, ChangeKeys, ChangeCheck, ChangeMesh, ChangeOnline, ChangeGone, ChangeAll:
		default:
			return "", nil, fmt.Errorf("store: announcement of unknown kind %q", it[0])
		}
		id, err := strconv.ParseInt(it[1:], 10, 64)
		if err != nil || id < 0 {
			return "", nil, fmt.Errorf("store: announcement with bad ID %.30q", it[1:])
		}
		changes = append(changes, Change{Kind: k, ID: id})
	}
	return origin, changes, nil
}
