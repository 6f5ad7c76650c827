package console

import (
	"net/http"

	"tsconnect/control"
)

type changePasswordRequest struct {
	CurrentPassword string `json:"currentPassword"`
	NewPassword     string `json:"newPassword"`
}

// changeOwnPassword sets the caller's password, given their current one (checked under the
// login limits): PUT /api/v1/me/password. Every console session of theirs ends, this one
// is replaced by a fresh one (new cookie and CSRF token in the answer).
func (c *Console) changeOwnPassword(w http.ResponseWriter, r *http.Request, s *session) {
	var req changePasswordRequest
	if !readJSONMax(w, r, &req, maxLoginBody) {
		return
	}
	ctx := r.Context()
	if _, refused := c.checkPassword(ctx, r, s.User.Email, req.CurrentPassword, control.AuthSignIn, "password change"); refused != nil {
		if refused.err != nil {
			c.writeErr(w, r, refused.err)
			return
		}
		refused.setRetryAfter(w)
		code, msg := codeBadLogin, "the current password is wrong"
		switch refused.status {
		case http.StatusTooManyRequests:
			code, msg = codeRateLimited, refused.msg
		case http.StatusServiceUnavailable:
			code, msg = codeBusy, refused.msg
		}
		writeError(w, refused.status, code, msg)
		return
	}
	if err := c.srv.SetPassword(ctx, s.User.ID, req.NewPassword); err != nil {
		c.writeErr(w, r, err)
		return
	}
	token, ws, err := c.srv.CreateSignIn(ctx, s.User.ID)
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	c.setCookie(w, r, token, 0)
	c.logf("console: %s changed their password from %s; their other sessions ended", s.User.Email, c.clientAddr(r))
	writeJSON(w, http.StatusOK, meJSON{User: userOf(ws.User), CSRFToken: ws.CSRF})
}

type resetPasswordRequest struct {
	Password string `json:"password"`
}

// resetPassword sets another user's password (admins): PUT /api/v1/users/{id}/password.
// Every console session of that user ends.
func (c *Console) resetPassword(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if id == s.User.ID {
		writeError(w, http.StatusBadRequest, codeBadRequest, "to change your own password use PUT "+APIPrefix+"/me/password with your current one")
		return
	}
	var req resetPasswordRequest
	if !readJSONMax(w, r, &req, maxLoginBody) {
		return
	}
	u, err := c.srv.UserByID(r.Context(), id)
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	if err := c.srv.SetPassword(r.Context(), id, req.Password); err != nil {
		c.writeErr(w, r, err)
		return
	}
	c.logf("console: %s reset the password of %s; their sessions ended", s.User.Email, u.Email)
	w.WriteHeader(http.StatusNoContent)
}
