package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"tsconnect/control/store"
	"tsconnect/internal/safetext"
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
	// SSH describes the login of an SSH login decision an agent reported (method "ssh").
	SSH *AuditSSH `json:"ssh,omitempty"`
}

// authEventFrom is the stored event e as the API shows it (an SSH part that does not
// decode is left out).
func authEventFrom(e store.AuthEvent) AuthEvent {
	out := AuthEvent{ID: e.ID, Time: e.Time, UserID: e.UserID, User: e.Email,
		Method: AuthMethod(e.Method), Kind: AuthKind(e.Kind), OK: e.OK, Detail: e.Detail}
	if len(e.SSH) > 0 {
		var x AuditSSH
		if json.Unmarshal(e.SSH, &x) == nil {
			out.SSH = &x
		}
	}
	return out
}

// SetPassword sets user id's console password (at least MinPasswordLen characters), stored
// as an argon2id hash, and ends every console sign-in of theirs (a reset or change logs
// out everyone who knew the old one; ChangePassword's caller signs in anew).
func (s *Server) SetPassword(ctx context.Context, userID int64, password string) error {
	if err := checkPasswordRules(password); err != nil {
		return err
	}
	var phc string
	if err := withHashSlot(ctx, func() { phc = hashPassword(password) }); err != nil {
		return fmt.Errorf("control: set password of user %d: %w", userID, err)
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var ended int
	err := s.st.Update(ctx, func(tx store.Tx) error {
		if err := tx.SetPasswordHash(userID, phc); err != nil {
			return err
		}
		var err error
		ended, err = tx.DeleteSignIns(userID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("control: no user %d: %w", userID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("control: set password of user %d: %w", userID, err)
	}
	s.logf("control: password of user %d set; %d console sign-ins ended", userID, ended)
	return nil
}

// ChangePassword is SetPassword for a user who proves they know their current password
// (a wrong one wraps ErrBadLogin and changes nothing).
func (s *Server) ChangePassword(ctx context.Context, userID int64, current, password string) error {
	u, err := s.UserByID(ctx, userID)
	if err != nil {
		return err
	}
	if err := checkPasswordRules(password); err != nil {
		return err
	}
	if _, err := s.CheckPassword(ctx, u.Email, current); err != nil {
		return err
	}
	return s.SetPassword(ctx, userID, password)
}

// SetPasswordByEmail is SetPassword for the user with that email (an admin's reset).
func (s *Server) SetPasswordByEmail(ctx context.Context, email, password string) (User, error) {
	u, err := s.UserByEmail(ctx, email)
	if err != nil {
		return User{}, err
	}
	return u, s.SetPassword(ctx, u.ID, password)
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
// take as long). At most MaxConcurrentHashes checks hash at once; one that waited HashWait
// for its turn wraps ErrBusy. It records nothing: callers record the attempt with RecordAuth.
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
		if err := withHashSlot(ctx, func() { verifyPassword(dummyHash, password[:min(len(password), maxPasswordLen)]) }); err != nil {
			return User{}, fmt.Errorf("control: check password: %w", err)
		}
		return User{}, ErrBadLogin
	}
	var ok bool
	var verr error
	if err := withHashSlot(ctx, func() { ok, verr = verifyPassword(phc, password) }); err != nil {
		return User{}, fmt.Errorf("control: check password: %w", err)
	}
	if verr != nil {
		s.logf("control: user %d: stored password hash: %v", u.ID, verr)
		return User{}, ErrBadLogin
	}
	if !ok {
		return User{}, ErrBadLogin
	}
	return userFrom(u), nil
}

// Bounds of the audit log's fields given by other parties (an email longer than RFC 5321's
// 254 bytes names nobody); longer values are cut and escaped (safetext.Bounded).
const (
	MaxAuditEmail  = 254
	MaxAuditDetail = 512
)

// RecordAuth appends to the audit log and, when ok, sets the user's last authentication for
// method to now (except for kinds AuthNodeLogin and AuthCheckPass, which prove nothing afresh).
// userID 0 records an attempt that named no known user (see RecordAuthAttempt).
func (s *Server) RecordAuth(ctx context.Context, userID int64, method AuthMethod, kind AuthKind, ok bool, detail string) error {
	return s.recordAuth(ctx, userID, "", method, kind, ok, s.now().UTC(), detail)
}

// RecordAuthAt records a successful authentication of userID that the identity provider
// says it performed at `at` (the ID token's auth_time): that, not now, becomes the user's
// last authentication for method, which check rules compare with their period. A zero at
// (the provider sent no auth_time) records the event and proves nothing: the last
// authentication stays. A time in the future counts as now.
func (s *Server) RecordAuthAt(ctx context.Context, userID int64, method AuthMethod, kind AuthKind, at time.Time, detail string) error {
	if now := s.now().UTC(); at.After(now) {
		at = now
	}
	return s.recordAuth(ctx, userID, "", method, kind, true, at.UTC(), detail)
}

// RecordAuthAttempt is RecordAuth for an attempt identified by the email it gave, which may
// name no user (then only the log entry is written).
func (s *Server) RecordAuthAttempt(ctx context.Context, email string, method AuthMethod, kind AuthKind, ok bool, detail string) error {
	return s.recordAuth(ctx, 0, strings.ToLower(strings.TrimSpace(email)), method, kind, ok, s.now().UTC(), detail)
}

// recordAuth writes the event; authAt (zero: none) becomes the last authentication when ok.
func (s *Server) recordAuth(ctx context.Context, userID int64, email string, method AuthMethod, kind AuthKind, ok bool, authAt time.Time, detail string) error {
	now := s.now().UTC()
	detail = safetext.Bounded(detail, MaxAuditDetail)
	err := s.st.Update(ctx, func(tx store.Tx) error {
		var u store.User
		var err error
		switch {
		case userID != 0:
			u, err = tx.UserByID(userID)
		case email != "" && len(email) <= MaxAuditEmail:
			u, err = tx.UserByEmail(email)
		default:
			err = store.ErrNotFound
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		e := store.AuthEvent{Time: now, UserID: u.ID, Email: u.Email, Method: string(method), Kind: string(kind), OK: ok, Detail: detail}
		if u.ID == 0 {
			e.Email, e.OK = safetext.Bounded(email, MaxAuditEmail), false // nobody authenticated
		}
		if err := tx.InsertAuthEvent(&e); err != nil {
			return err
		}
		if e.OK && !authAt.IsZero() && kind != AuthNodeLogin && kind != AuthCheckPass {
			return tx.SetLastAuth(u.ID, string(method), authAt)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("control: record authentication: %w", err)
	}
	result := "failed"
	if ok {
		result = "ok"
	}
	s.m.auth.WithLabelValues(string(kind), string(method), result).Inc()
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
			out = append(out, authEventFrom(e))
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("control: audit log: %w", err)
	}
	return out, nil
}
