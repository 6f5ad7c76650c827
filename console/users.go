package console

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"tsconnect/console/api"
	"tsconnect/control"
)

// lookupUser finds the user a path or body names: a numeric ID or an email.
func (c *Console) lookupUser(ctx context.Context, name string) (control.User, error) {
	name = strings.TrimSpace(name)
	if id, err := strconv.ParseInt(name, 10, 64); err == nil {
		if id <= 0 {
			return control.User{}, fmt.Errorf("bad user id %d: want a positive number or an email: %w", id, control.ErrInvalid)
		}
		return c.srv.UserByID(ctx, id)
	}
	return c.srv.UserByEmail(ctx, name)
}

// pathUser is the user the path's {user} names, or false when it answered 400/404.
func (c *Console) pathUser(w http.ResponseWriter, r *http.Request) (control.User, bool) {
	u, err := c.lookupUser(r.Context(), r.PathValue("user"))
	if err != nil {
		c.writeErr(w, r, err)
		return control.User{}, false
	}
	return u, true
}

// ownerOf is the user a request makes something for: name, or the caller when empty.
// Members may name only themselves; the local admin must name someone.
func (c *Console) ownerOf(w http.ResponseWriter, r *http.Request, p *caller, name api.UserName) (control.User, bool) {
	if name == "" {
		if p.via == viaSocket {
			writeError(w, http.StatusBadRequest, codeBadRequest, "the local admin owns nothing: name the user (an id or an email)")
			return control.User{}, false
		}
		return p.User, true
	}
	u, err := c.lookupUser(r.Context(), string(name))
	if err != nil {
		c.writeErr(w, r, err)
		return control.User{}, false
	}
	if u.ID != p.User.ID && !p.isAdmin() {
		writeError(w, http.StatusForbidden, codeForbidden, fmt.Sprintf("%s is a member: only admins act for another user (%s)", p.User.Email, u.Email))
		return control.User{}, false
	}
	return u, true
}

func (c *Console) users(w http.ResponseWriter, r *http.Request, _ *caller) {
	us, err := c.srv.Users(r.Context())
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	out := api.UserList{Users: make([]api.User, 0, len(us))}
	for _, u := range us {
		out.Users = append(out.Users, userOf(u))
	}
	writeJSON(w, http.StatusOK, out)
}

func (c *Console) createUser(w http.ResponseWriter, r *http.Request, s *caller) {
	var req api.CreateUserRequest
	if !readJSON(w, r, &req) {
		return
	}
	u, err := c.srv.CreateUserWithPassword(r.Context(), req.Email, control.Role(req.Role), req.Password)
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	c.logf("console: %s created %s user %s", s.name(), u.Role, u.Email)
	writeJSON(w, http.StatusCreated, userOf(u))
}

// deleteUser deletes a user with their nodes and keys; their sign-ins and API tokens end.
func (c *Console) deleteUser(w http.ResponseWriter, r *http.Request, s *caller) {
	u, ok := c.pathUser(w, r)
	if !ok {
		return
	}
	if u.ID == s.User.ID {
		writeError(w, http.StatusBadRequest, codeBadRequest, "you cannot delete yourself: ask another admin")
		return
	}
	du, err := c.srv.DeleteUser(r.Context(), u.Email)
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	c.logf("console: %s deleted user %s", s.name(), u.Email)
	writeJSON(w, http.StatusOK, api.DeletedUser{User: userOf(du.User), DeletedNodes: nonNil(du.DeletedNodes), RevokedKeys: nonNil(du.RevokedKeys)})
}

// audit lists authentications, newest first; ?before=ID pages back, ?limit=N (≤ 1000).
func (c *Console) audit(w http.ResponseWriter, r *http.Request, _ *caller) {
	q := r.URL.Query()
	var before int64
	limit := 200
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("bad before %q: want an event id", v))
			return
		}
		before = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 1000 {
			writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("bad limit %q: want 1 to 1000", v))
			return
		}
		limit = n
	}
	es, err := c.srv.AuditLog(r.Context(), before, limit)
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	out := api.AuditEvents{Events: make([]api.AuditEvent, 0, len(es))}
	for _, e := range es {
		out.Events = append(out.Events, auditEventOf(e))
	}
	writeJSON(w, http.StatusOK, out)
}
