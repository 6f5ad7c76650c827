package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"tsconnect/control"
)

// The node login page, /login/{id}: a node registering without an auth key waits for a
// person to sign in here (password or single sign-on) and confirm that it joins their
// network as theirs.

var loginTemplate = page(`<h1>Add a machine?</h1>
<dl>
<dt>Machine</dt><dd><strong>{{.Body.Hostname}}</strong></dd>
<dt>System</dt><dd>{{.Body.OS}}</dd>
<dt>Expires</dt><dd>{{.Body.Expires}}</dd>
</dl>
{{with .Body.Error}}<p class="error" role="alert">{{.}}</p>{{end}}
{{if .Body.SignedInAs}}
<form method="post" action="/login/{{.Body.ID}}">
<input type="hidden" name="token" value="{{.Body.Token}}">
<input type="hidden" name="action" value="confirm">
<p class="row"><button type="submit">Add {{.Body.Hostname}} as {{.Body.SignedInAs}}</button></p>
</form>
<p class="note">Only add machines you started yourself: the machine will act as you in the network.</p>
{{else}}
<p>Sign in to add this machine to the network as yours.</p>
<form method="post" action="/login/{{.Body.ID}}">
<input type="hidden" name="token" value="{{.Body.Token}}">
<input type="hidden" name="action" value="signin">
<label>Email <input type="email" name="email" value="{{.Body.Email}}" autocomplete="username" required autofocus></label>
<label>Password <input type="password" name="password" autocomplete="current-password" required></label>
<div class="row"><button type="submit">Sign in</button></div>
</form>
{{with .Body.SSOURL}}<hr><p><a class="button secondary" href="{{.}}">Sign in with single sign-on</a></p>{{end}}
{{end}}`)

type loginView struct {
	ID, Token    string
	Hostname, OS string
	Expires      string
	SignedInAs   string
	Email, Error string
	SSOURL       string
}

func (c *Console) loginNotFound(w http.ResponseWriter) {
	c.renderMessage(w, http.StatusNotFound, "No such machine login", message{Class: "error",
		Text:   "This machine login is unknown or has expired, or the machine was already added.",
		Detail: "Login URLs work once, for 10 minutes. Start the machine's login again to get a new one."})
}

// showLogin renders the login page for the visitor (s: their console sign-in, or nil).
func (c *Console) showLogin(w http.ResponseWriter, r *http.Request, status int, info control.LoginInfo, s *caller, email, errMsg string) {
	v := loginView{ID: info.ID, Hostname: info.Hostname, OS: info.OS,
		Expires: info.Expires.UTC().Format("15:04:05 MST, 2 Jan 2006"), Email: email, Error: errMsg}
	if s != nil {
		v.SignedInAs, v.Token = s.User.Email, c.formToken("login", info.ID, s.CSRF)
	} else {
		v.Token = c.formToken("login-signin", info.ID)
		if c.o.OIDC != nil {
			v.SSOURL = OIDCStartPath + "?returnTo=" + url.QueryEscape("/login/"+info.ID)
		}
	}
	if v.OS == "" {
		v.OS = "unknown"
	}
	c.render(w, status, loginTemplate, pageData{Title: "Add a machine", Body: v})
}

// loginPage shows a waiting node: GET /login/{id}.
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	info, err := c.srv.PendingLogin(r.Context(), r.PathValue("id"))
	if err != nil {
		c.loginNotFound(w)
		return
	}
	c.showLogin(w, r, http.StatusOK, info, c.pageSignIn(r), "", "")
}

// loginPost signs the visitor in, or adds the node as theirs: POST /login/{id}.
func (c *Console) loginPost(w http.ResponseWriter, r *http.Request) {
	if !c.readPageForm(w, r) {
		return
	}
	ctx := r.Context()
	id := r.PathValue("id")
	info, err := c.srv.PendingLogin(ctx, id)
	if err != nil {
		c.loginNotFound(w)
		return
	}
	s := c.pageSignIn(r)
	refused := func() {
		c.renderMessage(w, http.StatusForbidden, "Refused", message{Class: "error",
			Text: "This form has no valid token for this machine login, so it was refused.", Link: "/login/" + id, LinkText: "Reload the page"})
	}
	switch r.PostFormValue("action") {
	case "signin":
		if !c.validToken(r.PostFormValue("token"), "login-signin", id) {
			refused()
			return
		}
		c.loginSignIn(w, r, info)
	case "confirm":
		if s == nil {
			c.showLogin(w, r, http.StatusUnauthorized, info, nil, "", "Your sign-in has ended: sign in again.")
			return
		}
		if !c.validToken(r.PostFormValue("token"), "login", id, s.CSRF) {
			refused()
			return
		}
		c.loginConfirm(w, r, info, s)
	default:
		c.renderMessage(w, http.StatusBadRequest, "Bad form", message{Class: "error", Text: "The form asks for no known action."})
	}
}

// loginSignIn checks the email and password of the login page and starts a console sign-in.
func (c *Console) loginSignIn(w http.ResponseWriter, r *http.Request, info control.LoginInfo) {
	ctx := r.Context()
	email := strings.ToLower(strings.TrimSpace(r.PostFormValue("email")))
	addr := c.clientAddr(r)
	u, refused := c.checkPassword(ctx, r, email, r.PostFormValue("password"), control.AuthSignIn, "machine login page")
	if refused != nil {
		if refused.err != nil {
			c.pageError(w, r, refused.err)
			return
		}
		refused.setRetryAfter(w)
		c.showLogin(w, r, refused.status, info, nil, email, sentence(refused.msg))
		return
	}
	if err := c.srv.RecordAuth(ctx, u.ID, control.AuthPassword, control.AuthSignIn, true, "machine login page from "+addr); err != nil {
		c.pageError(w, r, err)
		return
	}
	token, ws, err := c.srv.CreateSignIn(ctx, u.ID)
	if err != nil {
		c.pageError(w, r, err)
		return
	}
	c.setCookie(w, r, token, 0)
	c.showLogin(w, r, http.StatusOK, info, callerOf(ws, token), "", "")
}

// loginConfirm adds the waiting node as the signed-in user's.
func (c *Console) loginConfirm(w http.ResponseWriter, r *http.Request, info control.LoginInfo, s *caller) {
	ctx := r.Context()
	err := c.srv.CompleteLogin(ctx, info.ID, s.User.ID)
	if errors.Is(err, control.ErrNotFound) {
		c.loginNotFound(w)
		return
	}
	if err != nil {
		c.logf("console: machine login %s… by %s: %v", info.ID[:min(8, len(info.ID))], s.User.Email, err)
		c.renderMessage(w, http.StatusConflict, "Machine not added", message{Class: "error",
			Text: "The machine could not be added: " + strings.TrimPrefix(err.Error(), "control: ")})
		return
	}
	_, method, err := c.srv.LastAuth(ctx, s.User.ID)
	if err != nil || method == "" {
		method = control.AuthPassword
	}
	detail := fmt.Sprintf("machine %q (%s) added from %s", info.Hostname, info.OS, c.clientAddr(r))
	if err := c.srv.RecordAuth(ctx, s.User.ID, method, control.AuthNodeLogin, true, detail); err != nil {
		c.logf("console: recording a machine login: %v", err)
	}
	c.logf("console: %s added machine %q", s.User.Email, info.Hostname)
	c.renderMessage(w, http.StatusOK, "Machine added", message{Class: "ok",
		Text:   fmt.Sprintf("%s is now in the network as %s's — you can close this window.", info.Hostname, s.User.Email),
		Detail: "The machine continues by itself.", Link: "/admin/", LinkText: "Open the console"})
}
