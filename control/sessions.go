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

// WebSessionIdle is how long a console login lasts without use.
const WebSessionIdle = 12 * time.Hour

// WebSessionLifetime is how long a console login lasts at most, however busy.
const WebSessionLifetime = 7 * 24 * time.Hour

// webSessionTouchEvery bounds how often use of a session is written to the store.
const webSessionTouchEvery = time.Minute

// WebSession is a console login. Only the SHA-256 of its token is stored, so a copy of the
// database lets nobody in, and logins survive a restart.
type WebSession struct {
	User User
	// CSRF is the token the console sends back in X-CSRF-Token; derived from the session
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

// CreateWebSession logs user id in to the console: it returns a new random 256-bit token
// (the cookie's value, shown this once) and the session.
func (s *Server) CreateWebSession(ctx context.Context, userID int64) (token string, ws WebSession, err error) {
	var raw [32]byte
	rand.Read(raw[:])
	token = base64.RawURLEncoding.EncodeToString(raw[:])
	now := s.now().UTC()
	row := store.WebSession{Hash: tokenHash(token), UserID: userID, Created: now, LastSeen: now}
	var u store.User
	err = s.st.Update(ctx, func(tx store.Tx) error {
		var err error
		if u, err = tx.UserByID(userID); err != nil {
			return err
		}
		if _, err := tx.DeleteIdleWebSessions(now.Add(-WebSessionIdle)); err != nil {
			return err
		}
		return tx.InsertWebSession(&row)
	})
	if errors.Is(err, store.ErrNotFound) {
		return "", WebSession{}, fmt.Errorf("control: no user %d: %w", userID, ErrNotFound)
	}
	if err != nil {
		return "", WebSession{}, fmt.Errorf("control: create web session: %w", err)
	}
	return token, WebSession{User: userFrom(u), CSRF: csrfOf(token), Created: now, LastSeen: now}, nil
}

// WebSessionByToken returns the live session of token and records its use; an unknown
// token, one idle longer than WebSessionIdle, one older than WebSessionLifetime, or one of a deleted user is ErrNotFound.
func (s *Server) WebSessionByToken(ctx context.Context, token string) (WebSession, error) {
	if token == "" {
		return WebSession{}, fmt.Errorf("control: no session token: %w", ErrNotFound)
	}
	h := tokenHash(token)
	now := s.now().UTC()
	var row store.WebSession
	var u store.User
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		if row, err = tx.WebSession(h); err != nil {
			return err
		}
		u, err = tx.UserByID(row.UserID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return WebSession{}, fmt.Errorf("control: unknown or ended session: %w", ErrNotFound)
	}
	if err != nil {
		return WebSession{}, fmt.Errorf("control: web session: %w", err)
	}
	if now.Sub(row.Created) > WebSessionLifetime {
		s.DeleteWebSession(ctx, token)
		return WebSession{}, fmt.Errorf("control: session started %s, more than %v ago: %w", row.Created.Format(time.RFC3339), WebSessionLifetime, ErrNotFound)
	}
	if now.Sub(row.LastSeen) > WebSessionIdle {
		s.DeleteWebSession(ctx, token)
		return WebSession{}, fmt.Errorf("control: session idle since %s: %w", row.LastSeen.Format(time.RFC3339), ErrNotFound)
	}
	if now.Sub(row.LastSeen) >= webSessionTouchEvery {
		err := s.st.Update(ctx, func(tx store.Tx) error { return tx.TouchWebSession(h, now) })
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return WebSession{}, fmt.Errorf("control: web session: %w", err)
		}
		row.LastSeen = now
	}
	return WebSession{User: userFrom(u), CSRF: csrfOf(token), Created: row.Created, LastSeen: row.LastSeen}, nil
}

// DeleteWebSession ends the session of token (a logout); an unknown token is no error.
func (s *Server) DeleteWebSession(ctx context.Context, token string) error {
	err := s.st.Update(ctx, func(tx store.Tx) error { return tx.DeleteWebSession(tokenHash(token)) })
	if err != nil {
		return fmt.Errorf("control: delete web session: %w", err)
	}
	return nil
}

// EndWebSessions ends every console session of user id and returns how many there were.
func (s *Server) EndWebSessions(ctx context.Context, userID int64) (int, error) {
	var n int
	err := s.st.Update(ctx, func(tx store.Tx) error {
		var err error
		n, err = tx.DeleteWebSessions(userID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("control: end sessions of user %d: %w", userID, err)
	}
	return n, nil
}
