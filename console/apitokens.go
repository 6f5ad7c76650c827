package console

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"tsconnect/console/api"
	"tsconnect/control"
)

// API tokens: "Authorization: Bearer tsapi-…" in front of the same handlers as a sign-in,
// within the token's scopes and its owner's current role. Failed token attempts are counted
// per client address like failed logins.

// tokenCaller authenticates a request by its Authorization header (the value given).
func (c *Console) tokenCaller(w http.ResponseWriter, r *http.Request, header string) (*caller, bool) {
	secret, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		writeError(w, http.StatusUnauthorized, codeUnauthenticated, "Authorization: want \"Bearer \" and an API token")
		return nil, false
	}
	akey := "token " + limitKey(c.clientIP(r))
	if wait := c.badTokens.reserve(akey); wait > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds()+1)))
		writeError(w, http.StatusTooManyRequests, codeRateLimited, fmt.Sprintf("too many bad API tokens from your address: try again in %d seconds", int(wait.Seconds()+1)))
		return nil, false
	}
	t, err := c.srv.APITokenBySecret(r.Context(), strings.TrimSpace(secret))
	if errors.Is(err, control.ErrNotFound) {
		writeError(w, http.StatusUnauthorized, codeUnauthenticated, "bad API token: "+strings.TrimPrefix(err.Error(), "control: "))
		return nil, false
	}
	c.badTokens.release(akey)
	if err != nil {
		c.writeErr(w, r, err)
		return nil, false
	}
	return &caller{User: t.User, via: viaToken, secret: strings.TrimSpace(secret), token: t}, true
}

func tokenOf(t control.APIToken) api.APIToken {
	j := api.APIToken{ID: t.ID, Owner: api.UserRef{ID: t.User.ID, Email: t.User.Email}, Scopes: nonNil(t.Scopes),
		Description: t.Description, Created: wireTime(t.Created), Expires: wireTime(t.Expires), Revoked: t.Revoked}
	if !t.LastUsed.IsZero() {
		lu := wireTime(t.LastUsed)
		j.LastUsed = &lu
	}
	return j
}

// apiTokens lists API tokens: every token for admins, their own for members.
func (c *Console) apiTokens(w http.ResponseWriter, r *http.Request, p *caller) {
	var of int64
	if !p.isAdmin() {
		of = p.User.ID
	}
	ts, err := c.srv.APITokens(r.Context(), of)
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	out := api.APITokenList{Tokens: []api.APIToken{}}
	for _, t := range ts {
		out.Tokens = append(out.Tokens, tokenOf(t))
	}
	writeJSON(w, http.StatusOK, out)
}

// createAPIToken makes a token of the caller (or, for admins, of the user named).
func (c *Console) createAPIToken(w http.ResponseWriter, r *http.Request, p *caller) {
	var req api.CreateAPITokenRequest
	if !readJSON(w, r, &req) {
		return
	}
	owner, ok := c.ownerOf(w, r, p, req.User)
	if !ok {
		return
	}
	if req.ExpiresIn < 0 || time.Duration(req.ExpiresIn)*time.Second > control.MaxAPITokenExpiry {
		writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("expiresIn %d: want seconds in (0, %d], or 0 for the default", req.ExpiresIn, int64(control.MaxAPITokenExpiry/time.Second)))
		return
	}
	secret, t, err := c.srv.CreateAPIToken(r.Context(), control.APITokenOptions{User: owner.ID, Scopes: req.Scopes,
		Expiry: time.Duration(req.ExpiresIn) * time.Second, Description: req.Description})
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	c.logf("console: %s created API token %d of %s, scopes %s", p.name(), t.ID, t.User.Email, strings.Join(t.Scopes, ","))
	writeJSON(w, http.StatusCreated, api.CreatedAPIToken{Token: tokenOf(t), Secret: secret})
}

// revokeAPIToken revokes a token: any token for admins, their own for members.
func (c *Console) revokeAPIToken(w http.ResponseWriter, r *http.Request, p *caller) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if !p.isAdmin() {
		ts, err := c.srv.APITokens(r.Context(), p.User.ID)
		if err != nil {
			c.writeErr(w, r, err)
			return
		}
		mine := false
		for _, t := range ts {
			mine = mine || t.ID == id
		}
		if !mine {
			c.writeErr(w, r, fmt.Errorf("no API token %d of yours: %w", id, control.ErrNotFound))
			return
		}
	}
	if err := c.srv.RevokeAPIToken(r.Context(), id); err != nil {
		c.writeErr(w, r, err)
		return
	}
	c.logf("console: %s revoked API token %d", p.name(), id)
	w.WriteHeader(http.StatusNoContent)
}
