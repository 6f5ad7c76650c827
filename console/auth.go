package console

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"tsconnect/console/api"
	"tsconnect/control"
	"tsconnect/internal/safetext"
)

// CookieName is the console's sign-in cookie.
const CookieName = "tsconnect_session"

// CSRFHeader carries the sign-in's CSRF token on every state-changing cookie request.
const CSRFHeader = "X-CSRF-Token"

// How a caller authenticated (api.Me.Via).
const (
	viaSignIn = "sign-in"      // the console's cookie
	viaSocket = "admin socket" // the local admin on DIR/admin.sock
	viaToken  = "API token"    // Authorization: Bearer
)

// localAdminName is how the admin socket's caller is named in logs and the policy history.
const localAdminName = "local admin"

// caller is who makes a request, however they authenticated: a sign-in, the local admin
// on the admin socket (user ID 0, role admin), or an API token of a user.
type caller struct {
	User control.User
	via  string
	// CSRF is the sign-in's CSRF token (sign-ins only).
	CSRF string
	// secret is the cookie's value or the API token, to check that it still holds.
	secret string
	// token is the API token (API tokens only).
	token control.APIToken
}

// callerOf is the caller of a sign-in whose cookie holds secret.
func callerOf(si control.SignIn, secret string) *caller {
	return &caller{User: si.User, via: viaSignIn, CSRF: si.CSRF, secret: secret}
}

// name names the caller in logs and the policy history.
func (p *caller) name() string {
	switch p.via {
	case viaSocket:
		return localAdminName
	case viaToken:
		return fmt.Sprintf("%s (API token %d)", p.User.Email, p.token.ID)
	}
	return p.User.Email
}

func (p *caller) isAdmin() bool { return p.User.Role == control.RoleAdmin }

// stillValid reports whether the caller's sign-in or API token still holds (for long
// requests such as the events WebSocket); control.ErrNotFound when it ended.
func (c *Console) stillValid(ctx context.Context, p *caller) error {
	switch p.via {
	case viaSignIn:
		_, err := c.srv.SignInByToken(ctx, p.secret)
		return err
	case viaToken:
		_, err := c.srv.APITokenBySecret(ctx, p.secret)
		return err
	}
	return nil
}

type handler func(w http.ResponseWriter, r *http.Request, p *caller)

// access says who may call a route.
type access struct {
	public bool // anyone, unauthenticated (the handler gets a nil caller)
	admin  bool // admins only: members get 403 forbidden
	// scope is the API token scope the route needs; "" means API tokens may not call it.
	scope string
	// signInOnly routes are for a person signed in to the console (PUT /me/password).
	signInOnly bool
	// socketOnly routes are for the admin socket alone (GET /backup: it holds private keys).
	socketOnly bool
}

// authenticator finds the caller of a request or answers it (401, 403) and returns false.
type authenticator func(w http.ResponseWriter, r *http.Request) (*caller, bool)

// guard wraps h with authentication by auth and the checks of a.
func (c *Console) guard(auth authenticator, a access, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.public {
			h(w, r, nil)
			return
		}
		p, ok := auth(w, r)
		if !ok {
			return
		}
		what := r.Method + " " + safetext.Bounded(r.URL.Path, 0)
		switch {
		case a.socketOnly && p.via != viaSocket:
			writeError(w, http.StatusForbidden, codeForbidden, fmt.Sprintf("only the admin socket may %s (on control's machine: tsconnect control backup)", what))
			return
		case p.via == viaToken && a.scope == "":
			writeError(w, http.StatusForbidden, codeInsufficientScope, fmt.Sprintf("API tokens may not %s: sign in to the console or use the admin socket", what))
			return
		case a.signInOnly && p.via != viaSignIn:
			writeError(w, http.StatusForbidden, codeForbidden, fmt.Sprintf("only a person signed in to the console may %s", what))
			return
		case p.via == viaToken && !p.token.HasScope(a.scope):
			writeError(w, http.StatusForbidden, codeInsufficientScope, fmt.Sprintf("API token %d has scopes %s; %s needs scope %q", p.token.ID, strings.Join(p.token.Scopes, ","), what, a.scope))
			return
		case a.admin && !p.isAdmin():
			writeError(w, http.StatusForbidden, codeForbidden, fmt.Sprintf("%s is a member: only admins may %s", p.User.Email, what))
			return
		}
		h(w, r, p)
	}
}

// webCaller authenticates a request of the HTTP listener: an API token when it sends
// Authorization, else the sign-in cookie, with the Origin and CSRF checks on state changes.
func (c *Console) webCaller(w http.ResponseWriter, r *http.Request) (*caller, bool) {
	if h, ok := r.Header["Authorization"]; ok {
		return c.tokenCaller(w, r, strings.Join(h, ","))
	}
	if !c.sameOrigin(w, r) {
		return nil, false
	}
	p, ok := c.signInCaller(w, r)
	if !ok {
		return nil, false
	}
	if changesState(r) && subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(p.CSRF)) != 1 {
		writeError(w, http.StatusForbidden, codeCSRF, "missing or wrong "+CSRFHeader+" header: send the csrfToken from /api/v1/me or the login answer")
		return nil, false
	}
	return p, true
}

// socketCaller is the caller of every request on the admin socket: the local admin.
func socketCaller(http.ResponseWriter, *http.Request) (*caller, bool) {
	return &caller{User: control.User{Email: localAdminName, Role: control.RoleAdmin}, via: viaSocket}, true
}

// signInCaller finds the caller's sign-in from the cookie, or answers 401.
func (c *Console) signInCaller(w http.ResponseWriter, r *http.Request) (*caller, bool) {
	ck, err := r.Cookie(CookieName)
	if err != nil || ck.Value == "" {
		writeError(w, http.StatusUnauthorized, codeUnauthenticated, "not logged in")
		return nil, false
	}
	si, err := c.srv.SignInByToken(r.Context(), ck.Value)
	if errors.Is(err, control.ErrNotFound) {
		c.clearCookie(w, r)
		writeError(w, http.StatusUnauthorized, codeUnauthenticated, "your login has ended: log in again")
		return nil, false
	}
	if err != nil {
		c.writeErr(w, r, err)
		return nil, false
	}
	return callerOf(si, ck.Value), true
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

func userOf(u control.User) api.User {
	return api.User{ID: u.ID, Email: u.Email, DisplayName: u.DisplayName, Role: string(u.Role)}
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (c *Console) login(w http.ResponseWriter, r *http.Request, _ *caller) {
	if !c.sameOrigin(w, r) {
		return
	}
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
	token, si, err := c.srv.CreateSignIn(ctx, u.ID)
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	c.setCookie(w, r, token, 0)
	c.logf("console: %s logged in from %s", u.Email, addr)
	writeJSON(w, http.StatusOK, c.meOf(ctx, callerOf(si, token)))
}

// logout ends the caller's sign-in. Without a live sign-in it only clears the cookie; with
// one it needs the CSRF token like every other state change.
func (c *Console) logout(w http.ResponseWriter, r *http.Request, _ *caller) {
	if !c.sameOrigin(w, r) {
		return
	}
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

func (c *Console) me(w http.ResponseWriter, r *http.Request, p *caller) {
	writeJSON(w, http.StatusOK, c.meOf(r.Context(), p))
}

// meOf is what /me and a sign-in answer about caller p.
func (c *Console) meOf(ctx context.Context, p *caller) api.Me {
	m := api.Me{User: userOf(p.User), CSRFToken: p.CSRF, Via: p.via, Scopes: p.token.Scopes}
	if p.via != viaSocket {
		m.RecordingViewer, _, _ = c.srv.RecordingViewer(ctx, p.User.ID)
	}
	return m
}
