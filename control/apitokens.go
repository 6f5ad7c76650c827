package control

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"tsconnect/control/store"
)

// API token scopes: what a token may do, within its owner's role.
const (
	ScopeRead   = "read"   // every GET the owner may make
	ScopeNodes  = "nodes"  // delete, tag and expire nodes; SSH launches
	ScopeKeys   = "keys"   // create and revoke auth keys
	ScopePolicy = "policy" // write the policy (admins)
	ScopeUsers  = "users"  // create and delete users, reset passwords (admins)
)

// Scopes lists every API token scope.
var Scopes = []string{ScopeRead, ScopeNodes, ScopeKeys, ScopePolicy, ScopeUsers}

// adminScopes are the scopes only an admin's token may have.
var adminScopes = []string{ScopePolicy, ScopeUsers}

// API token bounds.
const (
	// APITokenPrefix starts every API token secret: "tsapi-" and 43 characters of base64url
	// (256 random bits).
	APITokenPrefix = "tsapi-"
	// APITokenLen is the length of every secret; anything else is refused before a lookup.
	APITokenLen = len(APITokenPrefix) + 43
	// MaxAPITokensPerUser bounds the live (not revoked, not expired) tokens of a user.
	MaxAPITokensPerUser = 20
	// DefaultAPITokenExpiry is a token's validity when none is asked for.
	DefaultAPITokenExpiry = 90 * 24 * time.Hour
	// MaxAPITokenExpiry is the longest validity a token may have.
	MaxAPITokenExpiry = 365 * 24 * time.Hour
)

// APIToken describes an API token of a user; the secret itself is never kept.
type APIToken struct {
	ID          int64
	User        User // the owner as they are now (role included)
	Scopes      []string
	Description string
	Created     time.Time
	Expires     time.Time
	LastUsed    time.Time // zero when never used
	Revoked     bool
}

// HasScope reports whether the token has scope.
func (t APIToken) HasScope(scope string) bool { return slices.Contains(t.Scopes, scope) }

// APITokenOptions describe an API token to create.
type APITokenOptions struct {
	User        int64    // the owner
	Scopes      []string // a non-empty subset of Scopes; policy and users need an admin owner
	Expiry      time.Duration
	Description string // at most MaxKeyDescription bytes of printable text
}

// CreateAPIToken makes an API token of o.User and returns its secret, shown this once:
// only its SHA-256 is stored.
func (s *Server) CreateAPIToken(ctx context.Context, o APITokenOptions) (secret string, t APIToken, err error) {
	if len(o.Scopes) == 0 {
		return "", APIToken{}, fmt.Errorf("control: an API token needs at least one scope of %s: %w", strings.Join(Scopes, ", "), ErrInvalid)
	}
	scopes := slices.Clone(o.Scopes)
	slices.Sort(scopes)
	scopes = slices.Compact(scopes)
	for _, sc := range scopes {
		if !slices.Contains(Scopes, sc) {
			return "", APIToken{}, fmt.Errorf("control: unknown API token scope %q: want some of %s: %w", sc, strings.Join(Scopes, ", "), ErrInvalid)
		}
	}
	switch {
	case o.Expiry == 0:
		o.Expiry = DefaultAPITokenExpiry
	case o.Expiry < 0 || o.Expiry > MaxAPITokenExpiry:
		return "", APIToken{}, fmt.Errorf("control: API token expiry %v: want more than 0 and at most %v: %w", o.Expiry, MaxAPITokenExpiry, ErrInvalid)
	}
	desc := strings.TrimSpace(o.Description)
	if err := checkDescription(desc); err != nil {
		return "", APIToken{}, err
	}
	var raw [32]byte
	rand.Read(raw[:])
	secret = APITokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	now := s.now().UTC()
	row := store.APIToken{Hash: tokenHash(secret), UserID: o.User, Scopes: scopes, Description: desc,
		Created: now, Expires: now.Add(o.Expiry)}
	var u store.User
	err = s.st.Update(ctx, func(tx store.Tx) error {
		var err error
		if u, err = tx.UserByID(o.User); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("control: no user %d: %w", o.User, ErrNotFound)
		} else if err != nil {
			return err
		}
		if Role(u.Role) != RoleAdmin {
			for _, sc := range scopes {
				if slices.Contains(adminScopes, sc) {
					return fmt.Errorf("control: %s is a member: a token of theirs may not have scope %q: %w", u.Email, sc, ErrForbidden)
				}
			}
		}
		all, err := tx.APITokens()
		if err != nil {
			return err
		}
		live := 0
		for _, t := range all {
			if t.UserID == o.User && !t.Revoked && now.Before(t.Expires) {
				live++
			}
		}
		if live >= MaxAPITokensPerUser {
			return fmt.Errorf("control: %s has %d live API tokens, the most a user may have: revoke one first: %w", u.Email, live, ErrInvalid)
		}
		return tx.InsertAPIToken(&row)
	})
	if err != nil {
		return "", APIToken{}, wrapStoreErr("create API token", err)
	}
	s.logf("control: API token %d of %s created, scopes %s", row.ID, u.Email, strings.Join(scopes, ","))
	return secret, apiTokenOf(row, userFrom(u)), nil
}

func apiTokenOf(t store.APIToken, u User) APIToken {
	return APIToken{ID: t.ID, User: u, Scopes: t.Scopes, Description: t.Description, Created: t.Created,
		Expires: t.Expires, LastUsed: t.LastUsed, Revoked: t.Revoked}
}

// wrapStoreErr leaves control's own errors as they are and names what failed otherwise.
func wrapStoreErr(what string, err error) error {
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrForbidden) {
		return err
	}
	return fmt.Errorf("control: %s: %w", what, err)
}

// APITokenBySecret returns the live token of secret with its owner as they are now, and
// records its use. A secret of the wrong form is refused before any lookup; an unknown,
// revoked or expired one, or one whose owner is gone, wraps ErrNotFound.
func (s *Server) APITokenBySecret(ctx context.Context, secret string) (APIToken, error) {
	if len(secret) != APITokenLen || !strings.HasPrefix(secret, APITokenPrefix) {
		return APIToken{}, fmt.Errorf("control: not an API token (want %s and %d characters): %w", APITokenPrefix, APITokenLen-len(APITokenPrefix), ErrNotFound)
	}
	now := s.now().UTC()
	var t APIToken
	err := s.st.Update(ctx, func(tx store.Tx) error {
		row, err := tx.APITokenByHash(tokenHash(secret))
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("control: unknown API token: %w", ErrNotFound)
		} else if err != nil {
			return err
		}
		switch {
		case row.Revoked:
			return fmt.Errorf("control: API token %d was revoked: %w", row.ID, ErrNotFound)
		case !now.Before(row.Expires):
			return fmt.Errorf("control: API token %d expired at %s: %w", row.ID, row.Expires.Format(time.RFC3339), ErrNotFound)
		}
		u, err := tx.UserByID(row.UserID)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("control: the owner of API token %d is gone: %w", row.ID, ErrNotFound)
		} else if err != nil {
			return err
		}
		if now.Sub(row.LastUsed) >= signInTouchEvery {
			if err := tx.TouchAPIToken(row.ID, now); err != nil {
				return err
			}
			row.LastUsed = now
		}
		t = apiTokenOf(row, userFrom(u))
		return nil
	})
	if err != nil {
		return APIToken{}, wrapStoreErr("API token", err)
	}
	return t, nil
}

// APITokens lists API tokens, by ID: every user's when userID is 0, else that user's.
func (s *Server) APITokens(ctx context.Context, userID int64) ([]APIToken, error) {
	var out []APIToken
	err := s.st.Read(ctx, func(tx store.Tx) error {
		all, err := tx.APITokens()
		if err != nil {
			return err
		}
		users := map[int64]User{}
		for _, t := range all {
			if userID != 0 && t.UserID != userID {
				continue
			}
			u, ok := users[t.UserID]
			if !ok {
				su, err := tx.UserByID(t.UserID)
				if err != nil {
					return err
				}
				u = userFrom(su)
				users[t.UserID] = u
			}
			out = append(out, apiTokenOf(t, u))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("control: API tokens: %w", err)
	}
	return out, nil
}

// RevokeAPIToken revokes token id: it authenticates nobody any more.
func (s *Server) RevokeAPIToken(ctx context.Context, id int64) error {
	err := s.st.Update(ctx, func(tx store.Tx) error { return tx.RevokeAPIToken(id) })
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("control: no API token %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("control: revoke API token %d: %w", id, err)
	}
	s.logf("control: API token %d revoked", id)
	return nil
}
