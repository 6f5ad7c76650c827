package control

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"tsconnect/control/store"
	"tsconnect/controlws"
	"tsconnect/key"
)

// Errors the Go API wraps; the admin API maps them to HTTP status codes.
var (
	ErrNotFound = errors.New("not found")      // 404
	ErrExists   = errors.New("already exists") // 409
	ErrInvalid  = errors.New("invalid")        // 400
)

// Role is what a user may do: admins administer the network, members use it.
type Role string

// Roles.
const (
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
)

// User is a person of the network.
type User struct {
	ID          int64     `json:"id"`
	Email       string    `json:"email"`
	DisplayName string    `json:"displayName"`
	Role        Role      `json:"role"`
	Created     time.Time `json:"created"`
}

func userFrom(u store.User) User {
	return User{ID: u.ID, Email: u.Email, DisplayName: u.DisplayName, Role: Role(u.Role), Created: u.Created}
}

func profile(u store.User) controlws.UserProfile {
	return controlws.UserProfile{ID: u.ID, LoginName: u.Email, DisplayName: u.DisplayName}
}

// CreateUser adds a user with the given email (its login name) and role ("" means member).
// The display name starts as the email's local part.
func (s *Server) CreateUser(ctx context.Context, email string, role Role) (User, error) {
	email = strings.TrimSpace(email)
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || addr.Name != "" {
		return User{}, fmt.Errorf("control: %q is not a plain email address: %w", email, ErrInvalid)
	}
	email = strings.ToLower(email)
	if role == "" {
		role = RoleMember
	}
	if role != RoleAdmin && role != RoleMember {
		return User{}, fmt.Errorf("control: role %q: want admin or member: %w", role, ErrInvalid)
	}
	local, _, _ := strings.Cut(email, "@")
	u := store.User{Email: email, DisplayName: local, Role: store.Role(role), Created: s.now().UTC()}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err = s.st.Update(ctx, func(tx store.Tx) error { return tx.InsertUser(&u) })
	if errors.Is(err, store.ErrConflict) {
		return User{}, fmt.Errorf("control: user %s: %w", email, ErrExists)
	}
	if err != nil {
		return User{}, fmt.Errorf("control: create user %s: %w", email, err)
	}
	s.mu.Lock()
	s.users[u.ID] = profile(u)
	s.gen++
	s.rc.invalidate()
	s.mu.Unlock()
	s.changes.notify()
	s.logf("control: created user %d %s (%s)", u.ID, u.Email, u.Role)
	return userFrom(u), nil
}

// CreateUserWithPassword is CreateUser followed by SetPassword when password is not
// empty. A password the rules refuse creates no user.
func (s *Server) CreateUserWithPassword(ctx context.Context, email string, role Role, password string) (User, error) {
	if password != "" {
		if err := checkPasswordRules(password); err != nil {
			return User{}, err
		}
	}
	u, err := s.CreateUser(ctx, email, role)
	if err != nil || password == "" {
		return u, err
	}
	if err := s.SetPassword(ctx, u.ID, password); err != nil {
		return u, err
	}
	return u, nil
}

// Users returns every user by ID.
func (s *Server) Users(ctx context.Context) ([]User, error) {
	var out []User
	err := s.st.Read(ctx, func(tx store.Tx) error {
		us, err := tx.Users()
		for _, u := range us {
			out = append(out, userFrom(u))
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("control: list users: %w", err)
	}
	return out, nil
}

// UserByEmail returns the user with that login email, or an error wrapping ErrNotFound.
func (s *Server) UserByEmail(ctx context.Context, email string) (User, error) {
	var u store.User
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		u, err = tx.UserByEmail(strings.ToLower(strings.TrimSpace(email)))
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return User{}, fmt.Errorf("control: no user %s: %w", email, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("control: user %s: %w", email, err)
	}
	return userFrom(u), nil
}

// UserByID returns the user with that ID, or an error wrapping ErrNotFound.
func (s *Server) UserByID(ctx context.Context, id int64) (User, error) {
	var u store.User
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		u, err = tx.UserByID(id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return User{}, fmt.Errorf("control: no user %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("control: user %d: %w", id, err)
	}
	return userFrom(u), nil
}

// DeletedUser reports what DeleteUser did.
type DeletedUser struct {
	User         User    `json:"user"`
	DeletedNodes []int64 `json:"deletedNodes"` // the user's nodes, now deleted
	RevokedKeys  []int64 `json:"revokedKeys"`  // the user's auth keys not revoked before
}

// DeleteUser deletes the user with that email, as admins expect: every node the user owns
// (their untagged nodes; tagged nodes belong to no user and stay) is deleted like DeleteNode
// does (it leaves every map, the relay drops it), every auth key of theirs is revoked, and
// the user is removed. Maps are pushed at once, so agents cut SSH sessions from the deleted
// nodes with "Access revoked.". The email may be used again for a new user.
func (s *Server) DeleteUser(ctx context.Context, email string) (DeletedUser, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	var out DeletedUser
	var keys []key.Public
	s.writeMu.Lock()
	err := s.st.Update(ctx, func(tx store.Tx) error {
		out = DeletedUser{}
		keys = nil
		u, err := tx.UserByEmail(email)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("control: no user %s: %w", email, ErrNotFound)
		}
		if err != nil {
			return err
		}
		out.User = userFrom(u)
		nodes, err := tx.Nodes()
		if err != nil {
			return err
		}
		now := s.now().UTC()
		for _, n := range nodes {
			if n.UserID != u.ID {
				continue
			}
			n.Deleted = now
			if err := tx.UpdateNode(&n); err != nil {
				return err
			}
			out.DeletedNodes = append(out.DeletedNodes, n.ID)
			keys = append(keys, n.NodeKey)
		}
		aks, err := tx.AuthKeys()
		if err != nil {
			return err
		}
		for _, k := range aks {
			if k.UserID != u.ID || k.Revoked {
				continue
			}
			k.Revoked = true
			if err := tx.UpdateAuthKey(&k); err != nil {
				return err
			}
			out.RevokedKeys = append(out.RevokedKeys, k.ID)
		}
		return tx.DeleteUser(u.ID)
	})
	if err != nil {
		s.writeMu.Unlock()
		if errors.Is(err, ErrNotFound) {
			return DeletedUser{}, err
		}
		return DeletedUser{}, fmt.Errorf("control: delete user %s: %w", email, err)
	}
	// The nodes that saw one of the user's nodes have its profile in their maps, which
	// only a full map takes out: they get one, the others hear of the changes as deltas.
	var saw peerSet
	s.mu.RLock()
	for _, id := range out.DeletedNodes {
		for _, p := range s.peersNowLocked(id) {
			saw.add(p)
		}
	}
	s.mu.RUnlock()
	var conns []*nodeConn
	for _, id := range out.DeletedNodes {
		conns = append(conns, s.forgetNode(id)...)
	}
	s.mu.Lock()
	delete(s.users, out.User.ID)
	delete(s.groups, out.User.ID)
	s.gen++
	s.rc.invalidate()
	s.mu.Unlock()
	s.mu.RLock()
	saw.each(func(p int64) {
		for st := range s.streams[p] {
			st.markFull()
		}
	})
	s.mu.RUnlock()
	s.publishAll()
	s.writeMu.Unlock()
	for _, nk := range keys {
		s.dropNode(nk, nil)
	}
	for _, nc := range conns {
		nc.closeWith(&controlws.Error{Code: controlws.CodeNodeDeleted, Message: "this node was deleted: its user was deleted"})
	}
	s.logf("control: deleted user %d %s: nodes %v deleted, auth keys %v revoked", out.User.ID, out.User.Email, out.DeletedNodes, out.RevokedKeys)
	return out, nil
}
