package console

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"tsconnect/control"
)

// CookieName is the console's session cookie.
const CookieName = "tsconnect_session"

// CSRFHeader carries the session's CSRF token on every state-changing request.
const CSRFHeader = "X-CSRF-Token"

// session is the logged-in caller of a handler.
type session struct {
	control.SignIn
	token string
}

type handler func(w http.ResponseWriter, r *http.Request, s *session)

// public wraps a handler that needs no login; state-changing requests still pass the
// Origin check.
func (c *Console) public(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !c.sameOrigin(w, r) {
			return
		}
		h(w, r, nil)
	}
}

// member wraps a handler for any logged-in user.
func (c *Console) member(h handler) http.HandlerFunc { return c.authed(h, false) }

// admin wraps a handler for admins only: members get 403 forbidden.
func (c *Console) admin(h handler) http.HandlerFunc { return c.authed(h, true) }

func (c *Console) authed(h handler, adminOnly bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !c.sameOrigin(w, r) {
			return
		}
		s, ok := c.session(w, r)
		if !ok {
			return
		}
		if changesState(r) && subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(s.CSRF)) != 1 {
			writeError(w, http.StatusForbidden, codeCSRF, "missing or wrong "+CSRFHeader+" header: send the csrfToken from /api/v1/me or the login answer")
			return
		}
		if adminOnly && s.User.Role != control.RoleAdmin {
			writeError(w, http.StatusForbidden, codeForbidden, fmt.Sprintf("%s is a member: only admins may %s %s", s.User.Email, r.Method, r.URL.Path))
			return
		}
		h(w, r, s)
	}
}

// session finds the caller's login from the cookie, or answers 401.
func (c *Console) session(w http.ResponseWriter, r *http.Request) (*session, bool) {
	ck, err := r.Cookie(CookieName)
	if err != nil || ck.Value == "" {
		writeError(w, http.StatusUnauthorized, codeUnauthenticated, "not logged in")
		return nil, false
	}
	ws, err := c.srv.SignInByToken(r.Context(), ck.Value)
	if errors.Is(err, control.ErrNotFound) {
		c.clearCookie(w, r)
		writeError(w, http.StatusUnauthorized, codeUnauthenticated, "your login has ended: log in again")
		return nil, false
	}
	if err != nil {
		c.writeErr(w, r, err)
		return nil, false
	}
	return &session{SignIn: ws, token: ck.Value}, true
}

func changesState(r *http.Request) bool {
	return r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions
}

// sameOrigin refuses a state-changing request that does not come from the console's own
// origin: Origin must be it, or, when a browser sends no Origin, Sec-Fetch-Site must say
// same-origin. It answers 403 csrf and returns false on refusal.
func (c *Console) sameOrigin(w http.ResponseWriter, r *http.Request) bool {
	if !changesState(r) {
		return true
	}
	origin := r.Header.Get("Origin")
	switch {
	case origin != "" && strings.EqualFold(origin, c.origin):
		return true
	case origin == "" && r.Header.Get("Sec-Fetch-Site") == "same-origin":
		return true
	}
	what := "no Origin header"
	if origin != "" {
		what = fmt.Sprintf("Origin %q", origin)
	}
	writeError(w, http.StatusForbidden, codeCSRF, fmt.Sprintf("refused: %s; requests that change anything must come from %s", what, c.origin))
	return false
}

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.https || r.TLS != nil})
}

func (c *Console) clearCookie(w http.ResponseWriter, r *http.Request) { c.setCookie(w, r, "", -1) }

// userJSON is a user as the API shows it.
type userJSON struct {
	ID          int64        `json:"id"`
	Email       string       `json:"email"`
	DisplayName string       `json:"displayName"`
	Role        control.Role `json:"role"`
}

func userOf(u control.User) userJSON {
	return userJSON{ID: u.ID, Email: u.Email, DisplayName: u.DisplayName, Role: u.Role}
}

type meJSON struct {
	User      userJSON `json:"user"`
	CSRFToken string   `json:"csrfToken"`
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (c *Console) login(w http.ResponseWriter, r *http.Request, _ *session) {
	var req loginRequest
	if !readJSONMax(w, r, &req, maxLoginBody) {
		return
	}
	ctx := r.Context()
	addr := c.clientAddr(r)
	u, refused := c.checkPassword(ctx, r, req.Email, req.Password, control.AuthSignIn, "console login")
	if refused != nil {
		if refused.err != nil {
			c.writeErr(w, r, refused.err)
			return
		}
		refused.setRetryAfter(w)
		code := codeBadLogin
		switch refused.status {
		case http.StatusTooManyRequests:
			code = codeRateLimited
		case http.StatusServiceUnavailable:
			code = codeBusy
		}
		writeError(w, refused.status, code, refused.msg)
		return
	}
	if err := c.srv.RecordAuth(ctx, u.ID, control.AuthPassword, control.AuthSignIn, true, "console login from "+addr); err != nil {
		c.writeErr(w, r, err)
		return
	}
	token, ws, err := c.srv.CreateSignIn(ctx, u.ID)
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	c.setCookie(w, r, token, 0)
	c.logf("console: %s logged in from %s", u.Email, addr)
	writeJSON(w, http.StatusOK, meJSON{User: userOf(ws.User), CSRFToken: ws.CSRF})
}

// logout ends the caller's session. Without a live session it only clears the cookie; with
// one it needs the CSRF token like every other state change.
func (c *Console) logout(w http.ResponseWriter, r *http.Request, _ *session) {
	ck, err := r.Cookie(CookieName)
	if err == nil && ck.Value != "" {
		ws, err := c.srv.SignInByToken(r.Context(), ck.Value)
		if err == nil {
			if subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(ws.CSRF)) != 1 {
				writeError(w, http.StatusForbidden, codeCSRF, "missing or wrong "+CSRFHeader+" header")
				return
			}
			if err := c.srv.DeleteSignIn(r.Context(), ck.Value); err != nil {
				c.writeErr(w, r, err)
				return
			}
			c.logf("console: %s logged out", ws.User.Email)
		}
	}
	c.clearCookie(w, r)
	w.WriteHeader(http.StatusNoContent)
}

func (c *Console) me(w http.ResponseWriter, r *http.Request, s *session) {
	writeJSON(w, http.StatusOK, meJSON{User: userOf(s.User), CSRFToken: s.CSRF})
}
