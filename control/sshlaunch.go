package control

import (
	"context"
	"fmt"
	"slices"
	"time"

	"tsconnect/policy"
	"tsconnect/policy/rules"
)

// SSHLaunchKeyExpiry is how long the auth key of an SSH launch is valid.
const SSHLaunchKeyExpiry = 5 * time.Minute

// SSHLoginsFor lists the local accounts an untagged node of user userID (the ephemeral node an
// SSH launch registers) may log in as on node dst, exactly as policy.SSHLogins gives them.
// Empty when the policy allows none. dst unknown or deleted: ErrNotFound.
func (s *Server) SSHLoginsFor(ctx context.Context, userID, dst int64) ([]policy.Login, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	src, d, ok, err := s.launchPairLocked(userID, dst)
	if !ok {
		return nil, err // out of every map: nobody reaches it
	}
	return s.policy.SSHLogins(src, d), nil
}

// launchPairLocked is a browser node of user userID as the policy sees it (no addresses yet:
// policies naming addresses as sources are decided without them, as policy.SSHLogins
// documents) and node dst; false when dst is logged out (in no map) or either is unknown.
func (s *Server) launchPairLocked(userID, dst int64) (src, d policy.Node, ok bool, err error) {
	u, ok := s.users[userID]
	if !ok {
		return src, d, false, fmt.Errorf("control: no user %d: %w", userID, ErrNotFound)
	}
	ln, ok := s.nodes[dst]
	if !ok {
		return src, d, false, fmt.Errorf("control: no node %d: %w", dst, ErrNotFound)
	}
	if ln.loggedOut {
		return src, d, false, nil
	}
	return policy.Node{User: u.LoginName, UserGroups: s.groups[userID]}, s.policyNodeLocked(dst, ln), true, nil
}

// ReachesTCP reports whether the acls let a browser node of user userID (untagged, the user's,
// as an SSH launch's) open a TCP connection to port of node dst.
func (s *Server) ReachesTCP(ctx context.Context, userID, dst int64, port uint16) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	src, d, ok, err := s.launchPairLocked(userID, dst)
	if !ok {
		return false, err
	}
	return s.policy.ReachesTCP(src, d, port), nil
}

// LoginAllowed reports whether localUser is among logins: named, or covered by "*"
// (any account but root). A name rules.CheckUserName refuses (NUL, control bytes, '/',
// ...) is never allowed.
func LoginAllowed(logins []policy.Login, localUser string) bool {
	if rules.CheckUserName(localUser) != nil {
		return false
	}
	for _, l := range logins {
		if l.User == localUser || (l.User == "*" && localUser != "root" && localUser != "") {
			return true
		}
	}
	return false
}

// CreateSSHLaunchKey makes the auth key a console SSH session's browser node registers with:
// single-use, ephemeral, untagged, owned by user userID and valid SSHLaunchKeyExpiry.
func (s *Server) CreateSSHLaunchKey(ctx context.Context, userID int64) (secret string, info AuthKeyInfo, err error) {
	return s.CreateAuthKey(ctx, AuthKeyOptions{User: userID, Ephemeral: true, Expiry: SSHLaunchKeyExpiry, CreatedBy: userID})
}

// CheckTagOwnership returns an error wrapping ErrForbidden, naming the first tag that user
// userID may not apply: admins apply any tag, members only tags the policy's tagOwners give them.
func (s *Server) CheckTagOwnership(ctx context.Context, userID int64, tags []string) error {
	u, err := s.UserByID(ctx, userID)
	if err != nil {
		return err
	}
	if u.Role == RoleAdmin {
		return nil
	}
	s.mu.RLock()
	p, groups := s.policy, s.groups[userID]
	s.mu.RUnlock()
	tags = slices.Clone(tags)
	slices.Sort(tags)
	for _, t := range tags {
		if !p.CanApplyTagWithGroups(u.Email, groups, t) {
			return fmt.Errorf("%s may not use %s: only its owners in the policy's tagOwners (and admins) may: %w", u.Email, t, ErrForbidden)
		}
	}
	return nil
}
