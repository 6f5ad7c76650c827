package console

import (
	"fmt"
	"net/http"
	"time"

	"tsconnect/console/api"
	"tsconnect/control"
)

// maxKeyExpiry is the longest validity a key made in the console may have.
const maxKeyExpiry = 365 * 24 * time.Hour

func keyOf(k control.AuthKeyInfo, users map[int64]string) api.Key {
	j := api.Key{ID: k.ID, Prefix: k.Prefix, Reusable: k.Reusable, Ephemeral: k.Ephemeral, Tags: nonNil(k.Tags),
		Created: wireTime(k.Created), Expires: wireTime(k.Expires), Used: k.Used, Revoked: k.Revoked, Description: k.Description}
	if k.User != 0 {
		j.Owner = &api.UserRef{ID: k.User, Email: users[k.User]}
	}
	return j
}

// keys lists auth keys: every key for admins, their own for members.
func (c *Console) keys(w http.ResponseWriter, r *http.Request, s *caller) {
	ks, err := c.srv.AuthKeys(r.Context())
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	users, err := c.userEmails(r.Context())
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	out := api.KeyList{Keys: []api.Key{}}
	for _, k := range ks {
		if s.isAdmin() || k.User == s.User.ID {
			out.Keys = append(out.Keys, keyOf(k, users))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// createKey makes a key owned by the caller, or by the user an admin names (a tagged key
// of the local admin may have no owner). Members may make untagged keys or keys with tags
// they own (the policy's tagOwners); any other tag is refused with 403 naming it.
func (c *Console) createKey(w http.ResponseWriter, r *http.Request, s *caller) {
	var req api.CreateKeyRequest
	if !readJSON(w, r, &req) {
		return
	}
	var owner control.User
	if req.User != "" || s.via != viaSocket || len(req.Tags) == 0 {
		var ok bool
		if owner, ok = c.ownerOf(w, r, s, req.User); !ok {
			return
		}
	}
	if req.ExpiresIn < 0 || time.Duration(req.ExpiresIn)*time.Second > maxKeyExpiry {
		writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("expiresIn %d: want seconds in (0, %d], or 0 for the default", req.ExpiresIn, int64(maxKeyExpiry/time.Second)))
		return
	}
	if s.via != viaSocket {
		if err := c.srv.CheckTagOwnership(r.Context(), s.User.ID, req.Tags); err != nil {
			c.writeErr(w, r, err)
			return
		}
	}
	secret, info, err := c.srv.CreateAuthKey(r.Context(), control.AuthKeyOptions{
		User: owner.ID, Reusable: req.Reusable, Ephemeral: req.Ephemeral, Tags: req.Tags,
		Expiry: time.Duration(req.ExpiresIn) * time.Second, CreatedBy: s.User.ID, Description: req.Description,
	})
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	c.logf("console: %s created auth key %d (%s) tags=%v", s.name(), info.ID, info.Prefix, info.Tags)
	writeJSON(w, http.StatusCreated, api.CreatedKey{Key: keyOf(info, map[int64]string{owner.ID: owner.Email}), Secret: secret})
}

// revokeKey revokes a key: any key for admins, their own for members.
func (c *Console) revokeKey(w http.ResponseWriter, r *http.Request, s *caller) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if !s.isAdmin() {
		ks, err := c.srv.AuthKeys(r.Context())
		if err != nil {
			c.writeErr(w, r, err)
			return
		}
		var found *control.AuthKeyInfo
		for i := range ks {
			if ks[i].ID == id {
				found = &ks[i]
			}
		}
		switch {
		case found == nil:
			c.writeErr(w, r, fmt.Errorf("no auth key %d: %w", id, control.ErrNotFound))
			return
		case found.User != s.User.ID:
			c.writeErr(w, r, fmt.Errorf("auth key %d is not yours: members revoke only their own keys: %w", id, control.ErrForbidden))
			return
		}
	}
	if err := c.srv.RevokeAuthKey(r.Context(), id); err != nil {
		c.writeErr(w, r, err)
		return
	}
	c.logf("console: %s revoked auth key %d", s.name(), id)
	w.WriteHeader(http.StatusNoContent)
}
