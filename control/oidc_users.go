package control

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"

	"tsconnect/control/store"
)

// OIDCIdentity is a person an OpenID Provider vouched for (package oidc checked the token,
// the verified email and the allow lists).
type OIDCIdentity struct {
	Issuer  string
	Subject string // the provider's stable id for the person
	Email   string // verified by the provider
	Name    string // may be ""
	Groups  []string
}

// SignInMethods says how a user can prove who they are.
type SignInMethods struct {
	Password   bool   // a console password is set
	OIDCIssuer string // the OpenID Provider the user signs in with; "" when none
}

// OIDCUser returns the user of identity id, keeping their groups as the provider sent them
// this time (a change republishes every map, since policy groups may follow). The user is
// found by issuer and subject (and their email follows the provider's, unless another
// user has it: then ErrForbidden); failing that, a user with the same email who has no
// provider identity yet is bound to it (an admin may create users before they first sign
// in). With create, a user found neither way is created as a member; without, that is an
// error wrapping ErrNotFound. A user bound to another subject of the same email is refused
// (ErrForbidden). It records nothing: callers record the sign-in with RecordAuth.
func (s *Server) OIDCUser(ctx context.Context, id OIDCIdentity, create bool) (User, error) {
	if id.Issuer == "" || id.Subject == "" {
		return User{}, fmt.Errorf("control: OIDC identity without issuer or subject: %w", ErrInvalid)
	}
	email := strings.ToLower(strings.TrimSpace(id.Email))
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
		return User{}, fmt.Errorf("control: the provider's email %q is not a plain email address: %w", id.Email, ErrInvalid)
	}
	groups := slices.Clone(id.Groups)
	slices.Sort(groups)
	groups = slices.Compact(groups)
	if len(groups) == 0 {
		groups = nil
	}
	var (
		u                store.User
		created, changed bool
	)
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err := s.st.Update(ctx, func(tx store.Tx) error {
		created, changed = false, false
		var err error
		u, err = tx.UserByOIDC(id.Issuer, id.Subject)
		if errors.Is(err, store.ErrNotFound) {
			u, err = tx.UserByEmail(email)
			switch {
			case err == nil && u.OIDCSubject != "":
				return fmt.Errorf("control: %s is bound to another identity at %s (subject %q, not %q): %w",
					email, u.OIDCIssuer, u.OIDCSubject, id.Subject, ErrForbidden)
			case err == nil:
				u.OIDCIssuer, u.OIDCSubject = id.Issuer, id.Subject
				if err := tx.SetUserOIDC(u.ID, id.Issuer, id.Subject); err != nil {
					return err
				}
				s.logf("control: user %d %s now signs in with %s", u.ID, u.Email, id.Issuer)
			case errors.Is(err, store.ErrNotFound) && create:
				local, _, _ := strings.Cut(email, "@")
				name := strings.TrimSpace(id.Name)
				if name == "" {
					name = local
				}
				u = store.User{Email: email, DisplayName: name, Role: store.RoleMember, Created: s.now().UTC(),
					OIDCIssuer: id.Issuer, OIDCSubject: id.Subject, Groups: groups}
				created = true
				return tx.InsertUser(&u)
			case errors.Is(err, store.ErrNotFound):
				return fmt.Errorf("control: no user signs in as %s at %s: %w", email, id.Issuer, ErrNotFound)
			default:
				return err
			}
		} else if err != nil {
			return err
		}
		if u.Email != email {
			// The provider now gives this person another email: follow it, unless it is
			// another user's (then refuse: taking it over would merge two people).
			other, err := tx.UserByEmail(email)
			switch {
			case err == nil:
				return fmt.Errorf("control: the provider now gives %s (subject %q) the email %s, which user %d already has: sign-in refused; an admin must resolve it: %w",
					u.Email, id.Subject, email, other.ID, ErrForbidden)
			case !errors.Is(err, store.ErrNotFound):
				return err
			}
			if err := tx.SetUserEmail(u.ID, email); err != nil {
				return err
			}
			s.logf("control: user %d %s is now %s (the email at %s changed)", u.ID, u.Email, email, id.Issuer)
			u.Email, changed = email, true
		}
		if !slices.Equal(u.Groups, groups) {
			changed = true
			u.Groups = groups
			return tx.SetUserGroups(u.ID, groups)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrForbidden) || errors.Is(err, ErrNotFound) {
			return User{}, err
		}
		return User{}, fmt.Errorf("control: sign-in of %s: %w", email, err)
	}
	if created || changed {
		s.mu.Lock()
		s.users[u.ID] = profile(u)
		if groups == nil {
			delete(s.groups, u.ID)
		} else {
			s.groups[u.ID] = groups
		}
		s.gen++
		s.rc.invalidate()
		s.mu.Unlock()
		s.publishUser(u.ID)
	}
	switch {
	case created:
		s.logf("control: created user %d %s (member) at first sign-in with %s, groups %v", u.ID, u.Email, id.Issuer, groups)
	case changed:
		s.logf("control: groups of user %d %s at %s are now %v", u.ID, u.Email, id.Issuer, groups)
	}
	return userFrom(u), nil
}

// UserGroups returns user id's groups at the identity provider (nil when none).
func (s *Server) UserGroups(userID int64) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.groups[userID])
}

// SignInMethodsOf says how user id can sign in (ErrNotFound when there is no such user).
func (s *Server) SignInMethodsOf(ctx context.Context, userID int64) (SignInMethods, error) {
	var m SignInMethods
	err := s.st.Read(ctx, func(tx store.Tx) error {
		u, err := tx.UserByID(userID)
		if err != nil {
			return err
		}
		m.OIDCIssuer = u.OIDCIssuer
		h, err := tx.PasswordHash(userID)
		m.Password = h != ""
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return SignInMethods{}, fmt.Errorf("control: no user %d: %w", userID, ErrNotFound)
	}
	if err != nil {
		return SignInMethods{}, fmt.Errorf("control: sign-in methods of user %d: %w", userID, err)
	}
	return m, nil
}
