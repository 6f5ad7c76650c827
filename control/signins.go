package control

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"tsconnect/control/store"
)

// SignInIdle is how long a console login lasts without use.
const SignInIdle = 12 * time.Hour

// SignInLifetime is how long a console login lasts at most, however busy.
const SignInLifetime = 7 * 24 * time.Hour

// signInTouchEvery bounds how often use of a sign-in is written to the store.
const signInTouchEvery = time.Minute

// SignIn is a console login. Only the SHA-256 of its token is stored, so a copy of the
// database lets nobody in, and logins survive a restart.
type SignIn struct {
	User User
	// CSRF is the token the console sends back in X-CSRF-Token; derived from the sign-in
	// token (so nothing more is stored) and telling nothing about it.
	CSRF     string
	Created  time.Time
	LastSeen time.Time
}

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func csrfOf(token string) string {
	h := sha256.Sum256([]byte("tsconnect csrf\x00" + token))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// CreateSignIn logs user id in to the console: it returns a new random 256-bit token
// (the cookie's value, shown this once) and the sign-in.
func (s *Server) CreateSignIn(ctx context.Context, userID int64) (token string, ws SignIn, err error) {
	var raw [32]byte
	rand.Read(raw[:])
	token = base64.RawURLEncoding.EncodeToString(raw[:])
	now := s.now().UTC()
	row := store.SignIn{Hash: tokenHash(token), UserID: userID, Created: now, LastSeen: now}
	var u store.User
	err = s.st.Update(ctx, func(tx store.Tx) error {
		var err error
		if u, err = tx.UserByID(userID); err != nil {
			return err
		}
		if _, err := tx.DeleteIdleSignIns(now.Add(-SignInIdle)); err != nil {
			return err
		}
		return tx.InsertSignIn(&row)
	})
	if errors.Is(err, store.ErrNotFound) {
		return "", SignIn{}, fmt.Errorf("control: no user %d: %w", userID, ErrNotFound)
	}
	if err != nil {
		return "", SignIn{}, fmt.Errorf("control: create sign-in: %w", err)
	}
	return token, SignIn{User: userFrom(u), CSRF: csrfOf(token), Created: now, LastSeen: now}, nil
}

// SignInByToken returns the live sign-in of token and records its use; an unknown
// token, one idle longer than SignInIdle, one older than SignInLifetime, or one of a deleted user is ErrNotFound.
func (s *Server) SignInByToken(ctx context.Context, token string) (SignIn, error) {
	if token == "" {
		return SignIn{}, fmt.Errorf("control: no sign-in token: %w", ErrNotFound)
	}
	h := tokenHash(token)
	now := s.now().UTC()
	var row store.SignIn
	var u store.User
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		if row, err = tx.SignIn(h); err != nil {
			return err
		}
		u, err = tx.UserByID(row.UserID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return SignIn{}, fmt.Errorf("control: unknown or ended sign-in: %w", ErrNotFound)
	}
	if err != nil {
		return SignIn{}, fmt.Errorf("control: sign-in: %w", err)
	}
	if now.Sub(row.Created) > SignInLifetime {
		s.DeleteSignIn(ctx, token)
		return SignIn{}, fmt.Errorf("control: sign-in started %s, more than %v ago: %w", row.Created.Format(time.RFC3339), SignInLifetime, ErrNotFound)
	}
	if now.Sub(row.LastSeen) > SignInIdle {
		s.DeleteSignIn(ctx, token)
		return SignIn{}, fmt.Errorf("control: sign-in idle since %s: %w", row.LastSeen.Format(time.RFC3339), ErrNotFound)
	}
	if now.Sub(row.LastSeen) >= signInTouchEvery {
		err := s.st.Update(ctx, func(tx store.Tx) error { return tx.TouchSignIn(h, now) })
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return SignIn{}, fmt.Errorf("control: sign-in: %w", err)
		}
		row.LastSeen = now
	}
	return SignIn{User: userFrom(u), CSRF: csrfOf(token), Created: row.Created, LastSeen: row.LastSeen}, nil
}

// DeleteSignIn ends the sign-in of token (a logout); an unknown token is no error.
func (s *Server) DeleteSignIn(ctx context.Context, token string) error {
	err := s.st.Update(ctx, func(tx store.Tx) error { return tx.DeleteSignIn(tokenHash(token)) })
	if err != nil {
		return fmt.Errorf("control: delete sign-in: %w", err)
	}
	return nil
}

// EndSignIns ends every console sign-in of user id and returns how many there were.
func (s *Server) EndSignIns(ctx context.Context, userID int64) (int, error) {
	var n int
	err := s.st.Update(ctx, func(tx store.Tx) error {
		var err error
		n, err = tx.DeleteSignIns(userID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("control: end sign-ins of user %d: %w", userID, err)
	}
	return n, nil
}
