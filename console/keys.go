package console

import (
	"fmt"
	"net/http"
	"time"

	"tsconnect/control"
)

// maxKeyExpiry is the longest validity a key made in the console may have.
const maxKeyExpiry = 365 * 24 * time.Hour

type keyJSON struct {
	ID        int64    `json:"id"`
	Prefix    string   `json:"prefix"`
	Owner     *userRef `json:"owner"`
	Reusable  bool     `json:"reusable"`
	Ephemeral bool     `json:"ephemeral"`
	Tags      []string `json:"tags"`
	Created   string   `json:"created"`
	Expires   string   `json:"expires"`
	Used      bool     `json:"used"`
	Revoked   bool     `json:"revoked"`
	// Description is what the key's creator said it is for ("" when nothing).
	Description string `json:"description"`
}

func keyOf(k control.AuthKeyInfo, users map[int64]string) keyJSON {
	j := keyJSON{ID: k.ID, Prefix: k.Prefix, Reusable: k.Reusable, Ephemeral: k.Ephemeral, Tags: nonNil(k.Tags),
		Created: rfc3339(k.Created), Expires: rfc3339(k.Expires), Used: k.Used, Revoked: k.Revoked, Description: k.Description}
	if k.User != 0 {
		j.Owner = &userRef{ID: k.User, Email: users[k.User]}
	}
	return j
}

// keys lists auth keys: every key for admins, their own for members.
func (c *Console) keys(w http.ResponseWriter, r *http.Request, s *session) {
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
	out := []keyJSON{}
	for _, k := range ks {
		if s.User.Role == control.RoleAdmin || k.User == s.User.ID {
			out = append(out, keyOf(k, users))
		}
	}
	writeJSON(w, http.StatusOK, map[string][]keyJSON{"keys": out})
}

type createKeyRequest struct {
	Reusable    bool     `json:"reusable"`
	Ephemeral   bool     `json:"ephemeral"`
	Tags        []string `json:"tags"`
	ExpiresIn   int64    `json:"expiresIn"` // seconds; 0 means control.DefaultKeyExpiry
	Description string   `json:"description"`
}

// createKey makes a key owned by the caller. Members may make untagged keys or keys with
// tags they own (the policy's tagOwners); any other tag is refused with 403 naming it.
func (c *Console) createKey(w http.ResponseWriter, r *http.Request, s *session) {
	var req createKeyRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.ExpiresIn < 0 || time.Duration(req.ExpiresIn)*time.Second > maxKeyExpiry {
		writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("expiresIn %d: want seconds in (0, %d], or 0 for the default", req.ExpiresIn, int64(maxKeyExpiry/time.Second)))
		return
	}
	if err := c.srv.CheckTagOwnership(r.Context(), s.User.ID, req.Tags); err != nil {
		c.writeErr(w, r, err)
		return
	}
	secret, info, err := c.srv.CreateAuthKey(r.Context(), control.AuthKeyOptions{
		User: s.User.ID, Reusable: req.Reusable, Ephemeral: req.Ephemeral, Tags: req.Tags,
		Expiry: time.Duration(req.ExpiresIn) * time.Second, CreatedBy: s.User.ID, Description: req.Description,
	})
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	c.logf("console: %s created auth key %d (%s) tags=%v", s.User.Email, info.ID, info.Prefix, info.Tags)
	writeJSON(w, http.StatusCreated, struct {
		Key    keyJSON `json:"key"`
		Secret string  `json:"secret"`
	}{keyOf(info, map[int64]string{s.User.ID: s.User.Email}), secret})
}

// revokeKey revokes a key: any key for admins, their own for members.
func (c *Console) revokeKey(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if s.User.Role != control.RoleAdmin {
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
	c.logf("console: %s revoked auth key %d", s.User.Email, id)
	w.WriteHeader(http.StatusNoContent)
}
