package sshd

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/crypto/ssh"
)

// MaxHold is the longest AuthRequest.Extend grants: a login held for a person (check mode)
// must still end.
const MaxHold = 15 * time.Minute

// AuthRequest is one login for Server.Authorize to decide: who connects and as whom, and
// what Authorize may do to the client waiting for its verdict. The Server makes one per
// attempt; it is valid only until Authorize returns.
type AuthRequest interface {
	// Remote is the client's address (IPv4 unmapped): on the overlay, it names the peer.
	Remote() netip.AddrPort
	// User is the user name the client asks for, already checked by rules.CheckUserName.
	User() string
	// Banner shows message to the client while Authorize is still deciding, e.g. a URL to
	// re-authenticate at in check mode.
	Banner(message string) error
	// Extend gives the handshake d (at most MaxHold) from now to finish, instead of the
	// usual 2 minutes: for a login held while its user re-authenticates elsewhere.
	// Authorize's context ends with the handshake's new deadline.
	Extend(d time.Duration) error
}

// authRequest is the Server's AuthRequest for one "none" attempt on c.
type authRequest struct {
	c      *conn
	pre    ssh.ServerPreAuthConn
	remote netip.AddrPort
	user   string
}

func (r *authRequest) Remote() netip.AddrPort { return r.remote }
func (r *authRequest) User() string           { return r.user }

func (r *authRequest) Banner(message string) error {
	if r.pre == nil { // x/crypto/ssh always calls PreAuthConnCallback before authentication
		return errors.New("sshd: this SSH connection cannot carry a banner")
	}
	return r.pre.SendAuthBanner(withNewline(message))
}

func (r *authRequest) Extend(d time.Duration) error {
	if d <= 0 || d > MaxHold {
		return fmt.Errorf("sshd: handshake extension %v out of range (0, %v]", d, MaxHold)
	}
	c := r.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.authTimer == nil || !c.authTimer.Stop() {
		return errors.New("sshd: the handshake already ended")
	}
	c.authTimer.Reset(d)
	return c.nc.SetDeadline(time.Now().Add(d))
}
