package control

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"tsconnect/control/store"
)

// ErrBadLogin is returned by CheckPassword for an unknown email, a user without a
// password or a wrong password: the caller cannot tell which, and neither can an attacker.
var ErrBadLogin = errors.New("wrong email or password")

// ErrForbidden is wrapped by errors about a user acting beyond their rights (403).
var ErrForbidden = errors.New("forbidden")

// AuthMethod is how a person proved who they are.
type AuthMethod string

// Authentication methods.
const (
	AuthPassword AuthMethod = "password"
	AuthOIDC     AuthMethod = "oidc"
)

// AuthKind is what an authentication was for.
type AuthKind string

// Authentication kinds.
const (
	AuthSignIn    AuthKind = "signin"     // a console login
	AuthCheck     AuthKind = "check"      // re-authentication for an SSH check rule
	AuthNodeLogin AuthKind = "node-login" // interactive registration of a node
	// AuthCheckPass is an SSH check rule passed without asking: the user authenticated
	// within the rule's check period. It is logged, and does not extend the period.
	AuthCheckPass AuthKind = "check-pass"
)

// AuthEvent is one entry of the audit log.
type AuthEvent struct {
	ID     int64      `json:"id"`
	Time   time.Time  `json:"time"`
	UserID int64      `json:"userId,omitempty"` // 0 when the attempt named no known user
	User   string     `json:"user"`             // the user's email, or the one an attempt gave
	Method AuthMethod `json:"method"`
	Kind   AuthKind   `json:"kind"`
	OK     bool       `json:"ok"`
	Detail string     `json:"detail,omitempty"`
}

// SetPassword sets user id's console password (at least MinPasswordLen characters), stored
// as an argon2id hash.
func (s *Server) SetPassword(ctx context.Context, userID int64, password string) error {
	if err := checkPasswordRules(password); err != nil {
		return err
	}
	phc := hashPassword(password)
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err := s.st.Update(ctx, func(tx store.Tx) error { return tx.SetPasswordHash(userID, phc) })
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("control: no user %d: %w", userID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("control: set password of user %d: %w", userID, err)
	}
	s.logf("control: password of user %d set", userID)
	return nil
}

func checkPasswordRules(password string) error {
	switch n := len([]rune(password)); {
	case n < MinPasswordLen:
		return fmt.Errorf("control: password too short: want at least %d characters: %w", MinPasswordLen, ErrInvalid)
	case len(password) > maxPasswordLen:
		return fmt.Errorf("control: password too long: at most %d bytes: %w", maxPasswordLen, ErrInvalid)
	}
	return nil
}

// CheckPassword returns the user with that email if password is theirs; otherwise an error
// wrapping ErrBadLogin (unknown email, no password set, wrong password all look alike and
// take as long). It records nothing: callers record the attempt with RecordAuth.
func (s *Server) CheckPassword(ctx context.Context, email, password string) (User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	var u store.User
	var phc string
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		if u, err = tx.UserByEmail(email); err != nil {
			return err
		}
		phc, err = tx.PasswordHash(u.ID)
		return err
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return User{}, fmt.Errorf("control: check password: %w", err)
	}
	known := err == nil && phc != ""
	if !known || len(password) > maxPasswordLen {
		verifyPassword(dummyHash, password[:min(len(password), maxPasswordLen)])
		return User{}, ErrBadLogin
	}
	ok, verr := verifyPassword(phc, password)
	if verr != nil {
		s.logf("control: user %d: stored password hash: %v", u.ID, verr)
		return User{}, ErrBadLogin
	}
	if !ok {
		return User{}, ErrBadLogin
	}
	return userFrom(u), nil
}

// RecordAuth appends to the audit log and, when ok, sets the user's last authentication for
// method (except for kinds AuthNodeLogin and AuthCheckPass, which prove nothing afresh).
// userID 0 records an attempt that named no known user (see RecordAuthAttempt).
func (s *Server) RecordAuth(ctx context.Context, userID int64, method AuthMethod, kind AuthKind, ok bool, detail string) error {
	return s.recordAuth(ctx, userID, "", method, kind, ok, detail)
}

// RecordAuthAttempt is RecordAuth for an attempt identified by the email it gave, which may
// name no user (then only the log entry is written).
func (s *Server) RecordAuthAttempt(ctx context.Context, email string, method AuthMethod, kind AuthKind, ok bool, detail string) error {
	return s.recordAuth(ctx, 0, strings.ToLower(strings.TrimSpace(email)), method, kind, ok, detail)
}

func (s *Server) recordAuth(ctx context.Context, userID int64, email string, method AuthMethod, kind AuthKind, ok bool, detail string) error {
	now := s.now().UTC()
	err := s.st.Update(ctx, func(tx store.Tx) error {
		var u store.User
		var err error
		switch {
		case userID != 0:
			u, err = tx.UserByID(userID)
		case email != "":
			u, err = tx.UserByEmail(email)
		default:
			err = store.ErrNotFound
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		e := store.AuthEvent{Time: now, UserID: u.ID, Email: u.Email, Method: string(method), Kind: string(kind), OK: ok, Detail: detail}
		if u.ID == 0 {
			e.Email, e.OK = email, false // nobody authenticated
		}
		if err := tx.InsertAuthEvent(&e); err != nil {
			return err
		}
		if e.OK && kind != AuthNodeLogin && kind != AuthCheckPass {
			return tx.SetLastAuth(u.ID, string(method), now)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("control: record authentication: %w", err)
	}
	return nil
}

// LastAuth returns the user's most recent successful authentication (any method); zero Time if none.
func (s *Server) LastAuth(ctx context.Context, userID int64) (time.Time, AuthMethod, error) {
	var at time.Time
	var m string
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		at, m, err = tx.LastAuth(userID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return time.Time{}, "", nil
	}
	if err != nil {
		return time.Time{}, "", fmt.Errorf("control: last authentication of user %d: %w", userID, err)
	}
	return at, AuthMethod(m), nil
}

// AuditLog returns up to limit audit events (1000 when limit ≤ 0), newest first, with IDs
// below before (0: from the newest).
func (s *Server) AuditLog(ctx context.Context, before int64, limit int) ([]AuthEvent, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	var out []AuthEvent
	err := s.st.Read(ctx, func(tx store.Tx) error {
		es, err := tx.AuthEvents(before, limit)
		for _, e := range es {
			out = append(out, AuthEvent{ID: e.ID, Time: e.Time, UserID: e.UserID, User: e.Email,
				Method: AuthMethod(e.Method), Kind: AuthKind(e.Kind), OK: e.OK, Detail: e.Detail})
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("control: audit log: %w", err)
	}
	return out, nil
}
