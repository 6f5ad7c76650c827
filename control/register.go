package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"tsconnect/control/store"
	"tsconnect/controlws"
	"tsconnect/key"
)

// errf makes a client-facing protocol error.
func errf(code, format string, args ...any) *controlws.Error {
	return &controlws.Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// marshalHostinfo returns hi as JSON, or nil for the zero Hostinfo.
func marshalHostinfo(hi controlws.Hostinfo) json.RawMessage {
	b, _ := json.Marshal(hi)
	if string(b) == "{}" {
		return nil
	}
	return b
}

// register binds machine (authenticated by the control transport) to req.NodeKey as a node.
//
//   - A node key bound to another machine's live node is refused (CodeNodeKeyInUse).
//   - A machine whose node is live and logged in needs no auth key: the same node key is an
//     idempotent re-register, a new node key is a rotation; the node (ID, name, addresses)
//     stays and no key is consumed.
//   - A logged-in node asking to re-authenticate (req.Reauth, tsconnect login), or whose key
//     expired, needs the auth key or sign-in of its owner (sameOwner) and gets a new key
//     lifetime; it stays the same node (ID, name, addresses, owner, tags). Without one, an
//     expired node is refused (CodeNodeKeyExpired).
//   - Otherwise the auth key is checked (CodeInvalidKey, CodeExpiredKey, CodeUsedKey,
//     CodeRevokedKey; nothing is registered) and consumed in the same transaction that
//     creates the node, or logs a logged-out node back in (keeping its name and addresses).
//
// Protocol failures are *controlws.Error values.
func (s *Server) register(ctx context.Context, machine key.Public, req *controlws.RegisterRequest) (*controlws.RegisterResponse, error) {
	return s.registerAs(ctx, machine, req, nil)
}

// loginGrant is a completed interactive login: it registers the node to a user as an auth
// key would, untagged.
type loginGrant struct {
	userID    int64
	ephemeral bool
}

// registerAs is register; a non-nil grant stands in for the auth key.
func (s *Server) registerAs(ctx context.Context, machine key.Public, req *controlws.RegisterRequest, grant *loginGrant) (*controlws.RegisterResponse, error) {
	if req.NodeKey.IsZero() {
		return nil, errf(controlws.CodeBadRequest, "register: missing node key")
	}
	if machine.IsZero() {
		return nil, errf(controlws.CodeBadRequest, "register: missing machine key")
	}
	hi := marshalHostinfo(req.Hostinfo)
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var (
		n       store.Node
		changed bool
	)
	err := s.registerTx(ctx, func(tx store.Tx) error {
		now := s.now().UTC()
		holder, cur, err := tx.NodesOfKeys(req.NodeKey, machine)
		switch {
		case err != nil:
			return err
		case holder.ID != 0 && holder.MachineKey != machine:
			return errf(controlws.CodeNodeKeyInUse, "node key %s is bound to another machine", req.NodeKey.ShortString())
		}
		found := cur.ID != 0
		live := found && cur.Deleted.IsZero()
		// A logged-in node re-authenticates when asked to (tsconnect login) or when its key
		// expired; otherwise it needs no auth key.
		reauth := live && !cur.LoggedOut && (req.Reauth || keyExpiredAt(cur, now))
		if live && !cur.LoggedOut && !reauth {
			n = cur
			if cur.NodeKey != req.NodeKey {
				n.NodeKey, changed = req.NodeKey, true
			}
			if hi != nil && !bytes.Equal(hi, cur.Hostinfo) {
				n.Hostinfo, changed = hi, true
			}
			if changed {
				return tx.UpdateNode(&n)
			}
			return nil
		}
		if grant != nil {
			if _, err := tx.UserByID(grant.userID); errors.Is(err, store.ErrNotFound) {
				return errf(controlws.CodeInvalidKey, "the user who signed in (%d) does not exist", grant.userID)
			} else if err != nil {
				return err
			}
		} else if req.AuthKey == "" {
			switch {
			case reauth && keyExpiredAt(cur, now):
				return errf(controlws.CodeNodeKeyExpired, "this node's key expired at %s: re-authenticate it (tsconnect login)", cur.KeyExpiry.Format(time.RFC3339))
			case reauth:
				return errf(controlws.CodeInvalidKey, "re-authenticating needs an auth key or an interactive sign-in")
			case found && !live:
				return errf(controlws.CodeNodeDeleted, "this machine's node was deleted; register with a new auth key")
			case live:
				return errf(controlws.CodeInvalidKey, "this node logged out; register with a new auth key")
			}
			return errf(controlws.CodeInvalidKey, "an auth key is required to register")
		}
		var k store.AuthKey
		if grant != nil {
			k = store.AuthKey{UserID: grant.userID, Ephemeral: grant.ephemeral}
		} else {
			k, err = checkAuthKey(tx, req.AuthKey, now)
			if err != nil {
				return err
			}
			// A reusable key's used_at is kept to usedAtInterval: every registration writing
			// it made the key's row one that all registrations with it updated.
			if !k.Reusable || !k.Used || now.Sub(k.UsedAt) >= usedAtInterval || now.Before(k.UsedAt) {
				k.Used, k.UsedAt = true, now
				if err := tx.UpdateAuthKey(&k); err != nil {
					return err
				}
			}
		}
		changed = true
		life, err := loadKeyExpiry(tx)
		if err != nil {
			return err
		}
		if reauth { // same node, same owner: a new key lifetime (and maybe a new key)
			if err := sameOwner(tx, cur, k, grant); err != nil {
				return err
			}
			n = cur
			n.NodeKey, n.LastSeen, n.KeyExpiry = req.NodeKey, now, now.Add(life)
			if hi != nil {
				n.Hostinfo = hi
			}
			return tx.UpdateNode(&n)
		}
		if live { // logged out: log back in, keep name and addresses
			n = cur
			n.LoggedOut = false
		} else {
			n = store.Node{MachineKey: machine, Created: now}
		}
		n.NodeKey, n.LastSeen, n.KeyExpiry = req.NodeKey, now, now.Add(life)
		n.UserID, n.Tags, n.Ephemeral = k.UserID, k.Tags, k.Ephemeral
		if len(k.Tags) > 0 {
			n.UserID = 0 // tagged nodes belong to no user
		}
		if hi != nil {
			n.Hostinfo = hi
		}
		if n.ID == 0 {
			return s.insertNewNode(tx, &n, sanitizeHostname(req.Hostinfo.Hostname))
		}
		return tx.UpdateNode(&n)
	})
	if err != nil {
		var ce *controlws.Error
		if errors.As(err, &ce) {
			return nil, ce
		}
		s.logf("control: register machine %s: %v", machine.ShortString(), err)
		return nil, errf(controlws.CodeInternal, "registration failed on the server")
	}
	var oldKey key.Public
	s.mu.Lock()
	if old, ok := s.nodes[n.ID]; ok {
		oldKey = old.n.Key
	}
	if changed {
		s.cacheNode(n)
	}
	resp := &controlws.RegisterResponse{Node: s.nodeView(s.nodes[n.ID]), User: s.users[n.UserID]}
	s.mu.Unlock()
	if changed {
		s.publishSoon(n.ID) // with the others registering now
		s.logf("control: registered node %d %s (machine %s, node key %s)", n.ID, n.Name, machine.ShortString(), n.NodeKey.ShortString())
		if !oldKey.IsZero() && oldKey != n.NodeKey && s.relay != nil {
			s.relay.ClosePeer(oldKey) // rotated away: the old key is no longer admitted
		}
	}
	return resp, nil
}

// usedAtInterval is how stale a reusable auth key's used_at may get: a registration with it
// records its use only when the last record is older.
const usedAtInterval = time.Minute

// registerTx runs a registration's transaction fn, first reserving a block of addresses
// when this replica has none left (or fn used it up). Callers hold writeMu.
func (s *Server) registerTx(ctx context.Context, fn func(tx store.Tx) error) error {
	for range ipv4Size/addrBlockSize + 2 {
		if s.addrs4.next == 0 || s.addrs4.next > s.addrs4.end {
			if err := s.reserveAddrBlock(ctx); err != nil {
				return err
			}
		}
		err := s.st.Update(ctx, fn)
		if !errors.Is(err, errAddrBlockUsed) {
			return err
		}
		s.addrs4 = addrBlock{}
	}
	return errAddrsExhausted
}

// maxInsertConflicts bounds how many times insertNewNode tries another name or address pair
// that a replica took since this one's cache last heard.
const maxInsertConflicts = 64

// insertNewNode names n after base (made unique) and gives it the next address pair of the
// replica's block, then inserts it. The cache of live nodes is the pre-check; a name or
// address taken in the store meanwhile (by another replica) is refused by its unique index,
// and the insert tries the next.
func (s *Server) insertNewNode(tx store.Tx, n *store.Node, base string) error {
	name, err := uniqueName(nil, base, s.nameTaken)
	if err != nil {
		return err
	}
	taken := map[string]bool{}
	for range maxInsertConflicts {
		v4, v6, err := s.nextAddrs(s.addrTaken)
		if err != nil {
			return err
		}
		n.Name, n.IPv4, n.IPv6 = name, v4, v6
		insErr := tx.InsertNode(n)
		if !errors.Is(insErr, store.ErrConflict) {
			return insErr
		}
		if used, err := tx.NameInUse(name); err != nil {
			return err
		} else if used {
			taken[name] = true
			if name, err = uniqueName(tx, base, func(nm string) bool { return taken[nm] || s.nameTaken(nm) }); err != nil {
				return err
			}
			continue
		}
		if used, err := tx.AddrInUse(v4); err != nil {
			return err
		} else if !used {
			return insErr // another unique column (the machine's node, registered meanwhile)
		}
	}
	return fmt.Errorf("register: %d names or addresses in a row were taken meanwhile: %w", maxInsertConflicts, store.ErrConflict)
}

// nameTaken and addrTaken consult the cache of live nodes. Callers hold writeMu.
func (s *Server) nameTaken(name string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.names[name]
	return ok
}

func (s *Server) addrTaken(a netip.Addr) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.addrs[a]
	return ok
}

// sameOwner checks that the auth key k (or the interactive sign-in grant) may
// re-authenticate node n: it belongs to n's owner, or, for a tagged node, it is a tagged
// key with n's tags or the sign-in of an admin. Re-authenticating never changes the owner.
func sameOwner(tx store.Tx, n store.Node, k store.AuthKey, grant *loginGrant) error {
	if grant != nil {
		if n.UserID == grant.userID && n.UserID != 0 {
			return nil
		}
		u, err := tx.UserByID(grant.userID)
		if err != nil {
			return err
		}
		if n.UserID == 0 && u.Role == store.RoleAdmin {
			return nil
		}
		return errf(controlws.CodeInvalidKey, "%s may not re-authenticate node %s: it belongs to someone else", u.Email, n.Name)
	}
	if n.UserID != 0 && k.UserID == n.UserID && len(k.Tags) == 0 {
		return nil
	}
	if n.UserID == 0 && len(k.Tags) > 0 && slices.Equal(slices.Sorted(slices.Values(k.Tags)), slices.Sorted(slices.Values(n.Tags))) {
		return nil
	}
	return errf(controlws.CodeInvalidKey, "auth key %s may not re-authenticate node %s: it registers nodes of another owner or other tags", k.Prefix, n.Name)
}
