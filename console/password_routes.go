package console

import (
	"net/http"

	"tsconnect/console/api"
	"tsconnect/control"
)

type changePasswordRequest struct {
	CurrentPassword string `json:"currentPassword"`
	NewPassword     string `json:"newPassword"`
}

// changeOwnPassword sets the caller's password, given their current one (checked under the
// login limits): PUT /api/v1/me/password. Every console sign-in of theirs ends, this one
// is replaced by a fresh one (new cookie and CSRF token in the answer).
func (c *Console) changeOwnPassword(w http.ResponseWriter, r *http.Request, s *caller) {
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
	token, si, err := c.srv.CreateSignIn(ctx, s.User.ID)
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	c.setCookie(w, r, token, 0)
	c.logf("console: %s changed their password from %s; their other sign-ins ended", s.User.Email, c.clientAddr(r))
	writeJSON(w, http.StatusOK, c.meOf(r.Context(), callerOf(si, token)))
}

// resetPassword sets another user's password (admins): PUT /api/v1/users/{user}/password.
// Every console sign-in of that user ends; the answer is the user.
func (c *Console) resetPassword(w http.ResponseWriter, r *http.Request, s *caller) {
	var req api.SetPasswordRequest
	if !readJSONMax(w, r, &req, maxLoginBody) {
		return
	}
	u, ok := c.pathUser(w, r)
	if !ok {
		return
	}
	if u.ID == s.User.ID {
		writeError(w, http.StatusBadRequest, codeBadRequest, "to change your own password use PUT "+api.Prefix+"/me/password with your current one")
		return
	}
	if err := c.srv.SetPassword(r.Context(), u.ID, req.Password); err != nil {
		c.writeErr(w, r, err)
		return
	}
	c.logf("console: %s reset the password of %s; their sign-ins ended", s.name(), u.Email)
	writeJSON(w, http.StatusOK, userOf(u))
}
