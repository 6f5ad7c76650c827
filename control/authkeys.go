package control

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"tsconnect/control/store"
	"tsconnect/controlws"
)

// DefaultKeyExpiry is how long an auth key is valid when AuthKeyOptions.Expiry is 0.
const DefaultKeyExpiry = 90 * 24 * time.Hour

// AuthKeyOptions describe an auth key to create.
type AuthKeyOptions struct {
	// User owns the nodes the key registers. It may be 0 only for a tagged key: tagged
	// nodes belong to no user.
	User int64 `json:"user,omitempty"`
	// Reusable keys register any number of nodes; others exactly one.
	Reusable bool `json:"reusable,omitempty"`
	// Ephemeral nodes are deleted on logout and after EphemeralGrace offline.
	Ephemeral bool `json:"ephemeral,omitempty"`
	// Tags ("tag:name") the nodes get; a tagged node has no owner user.
	Tags []string `json:"tags,omitempty"`
	// Expiry is how long the key stays valid from now; 0 means DefaultKeyExpiry.
	Expiry time.Duration `json:"expiry,omitempty"`
	// CreatedBy is the user asking for the key; 0 means an administrator (the admin API).
	// A key with Tags needs a creator who owns every tag (the policy's tagOwners) or is an
	// admin; a key with an owner User needs CreatedBy to be that user or an admin.
	CreatedBy int64 `json:"createdBy,omitempty"`
	// Description says what the key is for (at most MaxKeyDescription bytes of printable
	// text; surrounding spaces are dropped). It is shown in key lists, never used to decide.
	Description string `json:"description,omitempty"`
}

// MaxKeyDescription is the longest auth key description, in bytes.
const MaxKeyDescription = 256

// AuthKeyInfo describes an auth key; the secret itself is never kept.
type AuthKeyInfo struct {
	ID        int64     `json:"id"`
	Prefix    string    `json:"prefix"` // the public part of the secret: tskey-<prefix>-…
	User      int64     `json:"user,omitempty"`
	Reusable  bool      `json:"reusable,omitempty"`
	Ephemeral bool      `json:"ephemeral,omitempty"`
	Tags      []string  `json:"tags,omitempty"`
	Expires   time.Time `json:"expires"`
	Used      bool      `json:"used,omitempty"`
	UsedAt    time.Time `json:"usedAt,omitzero"`
	Revoked   bool      `json:"revoked,omitempty"`
	Created   time.Time `json:"created"`
	// Description is what the key's creator said it is for ("" when nothing).
	Description string `json:"description,omitempty"`
}

func keyInfo(k store.AuthKey) AuthKeyInfo {
	return AuthKeyInfo{ID: k.ID, Prefix: k.Prefix, User: k.UserID, Reusable: k.Reusable, Ephemeral: k.Ephemeral,
		Tags: k.Tags, Expires: k.Expires, Used: k.Used, UsedAt: k.UsedAt, Revoked: k.Revoked, Created: k.Created,
		Description: k.Description}
}

// secretPrefix starts every auth key secret.
const secretPrefix = "tskey-"

var tagRE = regexp.MustCompile(`^tag:[a-z0-9][a-z0-9-]{0,62}$`)

// CreateAuthKey makes an auth key and returns its secret, "tskey-<prefix>-<random>". The
// secret is shown this once: only its SHA-256 is stored.
func (s *Server) CreateAuthKey(ctx context.Context, o AuthKeyOptions) (secret string, info AuthKeyInfo, err error) {
	for _, t := range o.Tags {
		if !tagRE.MatchString(t) {
			return "", info, fmt.Errorf("control: tag %q: want tag:name with name of [a-z0-9-]: %w", t, ErrInvalid)
		}
	}
	if o.User == 0 && len(o.Tags) == 0 {
		return "", info, fmt.Errorf("control: an auth key needs an owner user or tags: %w", ErrInvalid)
	}
	if o.Expiry < 0 {
		return "", info, fmt.Errorf("control: negative key expiry %v: %w", o.Expiry, ErrInvalid)
	}
	if o.Expiry == 0 {
		o.Expiry = DefaultKeyExpiry
	}
	o.Description = strings.TrimSpace(o.Description)
	if err := checkDescription(o.Description); err != nil {
		return "", info, err
	}
	var pfx [6]byte
	var rnd [20]byte
	rand.Read(pfx[:])
	rand.Read(rnd[:])
	prefix := hex.EncodeToString(pfx[:])
	secret = secretPrefix + prefix + "-" + hex.EncodeToString(rnd[:])
	sum := sha256.Sum256([]byte(secret))
	now := s.now().UTC()
	k := store.AuthKey{Hash: sum[:], Prefix: prefix, UserID: o.User, Reusable: o.Reusable, Ephemeral: o.Ephemeral,
		Tags: o.Tags, Expires: now.Add(o.Expiry), Created: now, Description: o.Description}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err = s.st.Update(ctx, func(tx store.Tx) error {
		if o.User != 0 {
			if _, err := tx.UserByID(o.User); errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("control: no user %d: %w", o.User, ErrNotFound)
			} else if err != nil {
				return err
			}
		}
		if o.CreatedBy != 0 {
			c, err := tx.UserByID(o.CreatedBy)
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("control: no user %d: %w", o.CreatedBy, ErrNotFound)
			} else if err != nil {
				return err
			}
			if o.User != 0 && o.User != c.ID && Role(c.Role) != RoleAdmin {
				return fmt.Errorf("control: user %s may not make keys for another user: %w", c.Email, ErrInvalid)
			}
			if err := s.canApplyTags(c, o.Tags); err != nil {
				return err
			}
		}
		return tx.InsertAuthKey(&k)
	})
	if err != nil {
		return "", info, fmt.Errorf("control: create auth key: %w", err)
	}
	s.changes.notify()
	s.logf("control: created auth key %d (%s) user=%d reusable=%v ephemeral=%v tags=%v", k.ID, k.Prefix, k.UserID, k.Reusable, k.Ephemeral, k.Tags)
	return secret, keyInfo(k), nil
}

// checkDescription refuses a key description that is too long or not printable text (it is
// shown in lists and terminals, where control characters could forge lines).
func checkDescription(d string) error {
	if len(d) > MaxKeyDescription {
		return fmt.Errorf("control: key description of %d bytes: at most %d: %w", len(d), MaxKeyDescription, ErrInvalid)
	}
	if !utf8.ValidString(d) {
		return fmt.Errorf("control: key description is not valid UTF-8: %w", ErrInvalid)
	}
	for _, r := range d {
		if !unicode.IsGraphic(r) {
			return fmt.Errorf("control: key description contains %U, a control or format character: want one line of text: %w", r, ErrInvalid)
		}
	}
	return nil
}

// AuthKeys returns every auth key by ID.
func (s *Server) AuthKeys(ctx context.Context) ([]AuthKeyInfo, error) {
	var out []AuthKeyInfo
	err := s.st.Read(ctx, func(tx store.Tx) error {
		ks, err := tx.AuthKeys()
		for _, k := range ks {
			out = append(out, keyInfo(k))
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("control: list auth keys: %w", err)
	}
	return out, nil
}

// RevokeAuthKey makes the key unusable for further registrations. Nodes it registered stay.
func (s *Server) RevokeAuthKey(ctx context.Context, id int64) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err := s.st.Update(ctx, func(tx store.Tx) error {
		k, err := tx.AuthKeyByID(id)
		if err != nil {
			return err
		}
		k.Revoked = true
		return tx.UpdateAuthKey(&k)
	})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("control: no auth key %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("control: revoke auth key %d: %w", id, err)
	}
	s.changes.notify()
	s.logf("control: revoked auth key %d", id)
	return nil
}

// checkAuthKey finds the key for secret and checks that it may register a node now.
// Failures are *controlws.Error values the client sees.
func checkAuthKey(tx store.Tx, secret string, now time.Time) (store.AuthKey, error) {
	rest, ok := strings.CutPrefix(secret, secretPrefix)
	prefix, _, ok2 := strings.Cut(rest, "-")
	if !ok || !ok2 || prefix == "" {
		return store.AuthKey{}, &controlws.Error{Code: controlws.CodeInvalidKey, Message: "malformed auth key: want tskey-<prefix>-<secret>"}
	}
	k, err := tx.AuthKeyByPrefix(prefix)
	if errors.Is(err, store.ErrNotFound) {
		return k, &controlws.Error{Code: controlws.CodeInvalidKey, Message: "unknown auth key"}
	}
	if err != nil {
		return k, err
	}
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(sum[:], k.Hash) != 1 {
		return k, &controlws.Error{Code: controlws.CodeInvalidKey, Message: "unknown auth key"}
	}
	switch {
	case k.Revoked:
		return k, &controlws.Error{Code: controlws.CodeRevokedKey, Message: fmt.Sprintf("auth key %s was revoked", k.Prefix)}
	case !k.Expires.IsZero() && !now.Before(k.Expires):
		return k, &controlws.Error{Code: controlws.CodeExpiredKey, Message: fmt.Sprintf("auth key %s expired at %s", k.Prefix, k.Expires.Format(time.RFC3339))}
	case k.Used && !k.Reusable:
		return k, &controlws.Error{Code: controlws.CodeUsedKey, Message: fmt.Sprintf("single-use auth key %s was already used", k.Prefix)}
	}
	return k, nil
}
