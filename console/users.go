package console

import (
	"fmt"
	"net/http"
	"strconv"

	"tsconnect/control"
)

func (c *Console) users(w http.ResponseWriter, r *http.Request, _ *session) {
	us, err := c.srv.Users(r.Context())
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	out := make([]userJSON, 0, len(us))
	for _, u := range us {
		out = append(out, userOf(u))
	}
	writeJSON(w, http.StatusOK, map[string][]userJSON{"users": out})
}

type createUserRequest struct {
	Email    string       `json:"email"`
	Role     control.Role `json:"role"`
	Password string       `json:"password"`
}

func (c *Console) createUser(w http.ResponseWriter, r *http.Request, s *session) {
	var req createUserRequest
	if !readJSON(w, r, &req) {
		return
	}
	u, err := c.srv.CreateUserWithPassword(r.Context(), req.Email, req.Role, req.Password)
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	c.logf("console: %s created %s user %s", s.User.Email, u.Role, u.Email)
	writeJSON(w, http.StatusCreated, userOf(u))
}

// deleteUser deletes a user with their nodes and keys; their console sessions end.
func (c *Console) deleteUser(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if id == s.User.ID {
		writeError(w, http.StatusBadRequest, codeBadRequest, "you cannot delete yourself: ask another admin")
		return
	}
	u, err := c.srv.UserByID(r.Context(), id)
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	du, err := c.srv.DeleteUser(r.Context(), u.Email)
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	c.logf("console: %s deleted user %s", s.User.Email, u.Email)
	writeJSON(w, http.StatusOK, struct {
		User         userJSON `json:"user"`
		DeletedNodes []int64  `json:"deletedNodes"`
		RevokedKeys  []int64  `json:"revokedKeys"`
	}{userOf(du.User), nonNil(du.DeletedNodes), nonNil(du.RevokedKeys)})
}

type auditEventJSON struct {
	ID     int64              `json:"id"`
	Time   string             `json:"time"`
	User   string             `json:"user"`
	Method control.AuthMethod `json:"method"`
	Kind   control.AuthKind   `json:"kind"`
	OK     bool               `json:"ok"`
	Detail string             `json:"detail"`
}

// audit lists authentications, newest first; ?before=ID pages back, ?limit=N (≤ 1000).
func (c *Console) audit(w http.ResponseWriter, r *http.Request, _ *session) {
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
	out := make([]auditEventJSON, 0, len(es))
	for _, e := range es {
		out = append(out, auditEventJSON{ID: e.ID, Time: rfc3339(e.Time), User: e.User, Method: e.Method, Kind: e.Kind, OK: e.OK, Detail: e.Detail})
	}
	writeJSON(w, http.StatusOK, map[string][]auditEventJSON{"events": out})
}
