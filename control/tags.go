package control

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"tsconnect/control/store"
	"tsconnect/controlws"
)

// TagNodeOptions say who retags a node and, when tags are removed, who owns it next.
type TagNodeOptions struct {
	// By is the user applying the change; 0 means an administrator (the admin API). A user
	// who is not an admin must own (the policy's tagOwners) every tag added or removed, and
	// may only make themselves the owner.
	By int64 `json:"by,omitempty"`
	// User becomes the owner when the node ends up with no tags. Untagging a tagged node
	// (which has no owner) needs it; it must be 0 when tags remain.
	User int64 `json:"user,omitempty"`
}

// SetNodeTags replaces node id's tags with tags ("tag:name"; empty untags it). A tagged node
// belongs to no user; an untagged one to o.User (required when the node was tagged: there
// is no previous owner to fall back to). Rules are recompiled and every affected node gets
// a new map at once, so SSH sessions the change no longer allows are cut by their agents.
func (s *Server) SetNodeTags(ctx context.Context, id int64, tags []string, o TagNodeOptions) (controlws.Node, error) {
	tags = slices.Clone(tags)
	slices.Sort(tags)
	tags = slices.Compact(tags)
	for _, t := range tags {
		if !tagRE.MatchString(t) {
			return controlws.Node{}, fmt.Errorf("control: tag %q: want tag:name with name of [a-z0-9-]: %w", t, ErrInvalid)
		}
	}
	if len(tags) > 0 && o.User != 0 {
		return controlws.Node{}, fmt.Errorf("control: node %d: a tagged node has no owner user; give an owner only when untagging: %w", id, ErrInvalid)
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var n store.Node
	err := s.st.Update(ctx, func(tx store.Tx) error {
		var err error
		n, err = tx.NodeByID(id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && !n.Deleted.IsZero()) {
			return fmt.Errorf("control: no node %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return err
		}
		var by store.User
		if o.By != 0 {
			if by, err = tx.UserByID(o.By); errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("control: no user %d: %w", o.By, ErrNotFound)
			} else if err != nil {
				return err
			}
			// Adding a tag and taking one away both need its ownership.
			changed := ChangedTags(n.Tags, tags)
			if err := s.canApplyTags(by, changed); err != nil {
				return err
			}
		}
		if len(tags) == 0 {
			switch {
			case o.User == 0 && len(n.Tags) > 0:
				return fmt.Errorf("control: node %d (%s) is tagged and so has no owner user: untagging it needs a new owner (TagNodeOptions.User, --user EMAIL): %w", id, n.Name, ErrInvalid)
			case o.User != 0:
				if _, err := tx.UserByID(o.User); errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("control: no user %d: %w", o.User, ErrNotFound)
				} else if err != nil {
					return err
				}
				if o.By != 0 && o.User != o.By && Role(by.Role) != RoleAdmin {
					return fmt.Errorf("control: user %s may not give node %d to another user: %w", by.Email, id, ErrInvalid)
				}
				n.UserID = o.User
			}
		} else {
			n.UserID = 0 // tagged nodes belong to no user
		}
		n.Tags = tags
		return tx.UpdateNode(&n)
	})
	if err != nil {
		return controlws.Node{}, fmt.Errorf("control: tag node %d: %w", id, err)
	}
	s.mu.Lock()
	s.cacheNode(n)
	view := s.nodeView(s.nodes[n.ID])
	s.mu.Unlock()
	s.publishChanged(n.ID)
	s.logf("control: node %d (%s) tags=%v user=%d (by user %d, 0: admin)", n.ID, n.Name, n.Tags, n.UserID, o.By)
	return view, nil
}

// ChangedTags lists the tags in exactly one of a and b: those a change from a to b adds or
// removes (each needs its owner's say).
func ChangedTags(a, b []string) []string {
	var out []string
	for _, t := range a {
		if !slices.Contains(b, t) {
			out = append(out, t)
		}
	}
	for _, t := range b {
		if !slices.Contains(a, t) {
			out = append(out, t)
		}
	}
	return out
}
