package sshd

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// MaxHold is the longest ExtendHandshake grants: a login held for a person (check mode)
// must still end.
const MaxHold = 15 * time.Minute

// connKey is the context key under which Authorize's context carries its connection.
type connKey struct{}

// ExtendHandshake gives the connection Authorize is deciding for d (at most MaxHold) from
// now to finish authenticating, instead of the usual 2 minutes: for a login held while its
// user re-authenticates elsewhere. ctx must be the context Authorize was called with; its
// deadline moves with the handshake's.
func ExtendHandshake(ctx context.Context, d time.Duration) error {
	c, ok := ctx.Value(connKey{}).(*conn)
	if !ok {
		return errors.New("sshd: ExtendHandshake called outside of Authorize")
	}
	if d <= 0 || d > MaxHold {
		return fmt.Errorf("sshd: handshake extension %v out of range (0, %v]", d, MaxHold)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.authTimer == nil || !c.authTimer.Stop() {
		return errors.New("sshd: the handshake already ended")
	}
	c.authTimer.Reset(d)
	return c.nc.SetDeadline(time.Now().Add(d))
}
