package console

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"tsconnect/control"
	"tsconnect/oidc"
)

// The check page, /check/{id}: an SSH login held by a check rule waits for its user to
// re-authenticate here, even with a console sign-in: a local account re-enters its
// password, a single sign-on user signs in at the provider afresh. Or they decline it.

var checkTemplate = page(`<h1>Approve an SSH login?</h1>
<dl>
<dt>User</dt><dd><strong>{{.Body.User}}</strong></dd>
<dt>From</dt><dd>{{template "node" .Body.From}}</dd>
<dt>To</dt><dd>{{template "node" .Body.To}}</dd>
<dt>As</dt><dd>local user <code>{{.Body.LocalUser}}</code></dd>
<dt>Expires</dt><dd>{{.Body.Expires}}</dd>
</dl>
{{with .Body.SignedInAs}}<p class="note">You are signed in to the console as {{.}}{{if $.Body.OtherUser}}, not as {{$.Body.User}}: only {{$.Body.User}} can approve this login{{end}}.</p>{{end}}
{{with .Body.Error}}<p class="error" role="alert">{{.}}</p>{{end}}
{{if or .Body.Password .Body.SSO}}<p>If this is you, confirm who you are to let the login in.</p>
{{else}}<p class="error">{{.Body.User}} has no way to re-authenticate here (no password and no single sign-on): ask an admin.</p>{{end}}
{{if .Body.Password}}<form method="post" action="/check/{{.Body.ID}}">
<input type="hidden" name="token" value="{{.Body.Token}}">
<input type="hidden" name="action" value="approve">
<label>Email <input type="email" name="email" value="{{.Body.Email}}" autocomplete="username" required></label>
<label>Password <input type="password" name="password" autocomplete="current-password" required autofocus></label>
<div class="row"><button type="submit">Approve</button></div>
</form>{{end}}
{{if .Body.SSO}}{{if .Body.Password}}<hr>{{end}}<p><a class="button" href="/check/{{.Body.ID}}/sso">Re-authenticate with single sign-on</a></p>
<p class="note">at {{.Body.Issuer}}</p>{{end}}
<hr>
<form method="post" action="/check/{{.Body.ID}}">
<input type="hidden" name="token" value="{{.Body.Token}}">
<input type="hidden" name="action" value="decline">
<p class="row"><button type="submit" class="danger">Decline</button> <span class="note">Not you, or not expected? Decline refuses the login.</span></p>
</form>`,
	`{{define "node"}}{{.Name}} <span class="who">({{if .Owner}}{{.Owner}}{{else}}{{range $i, $t := .Tags}}{{if $i}}, {{end}}{{$t}}{{end}}{{end}})</span>{{end}}`)

type checkView struct {
	ID, Token     string
	User          string
	From, To      nodeLabel
	LocalUser     string
	Expires       string
	Password, SSO bool
	Issuer        string
	SignedInAs    string
	OtherUser     bool
	Email, Error  string
}

// checkNotFound answers for an unknown, decided or expired check.
func (c *Console) checkNotFound(w http.ResponseWriter) {
	c.renderMessage(w, http.StatusNotFound, "No such login", message{Class: "error",
		Text:   "This login request is unknown or has expired, or it was already approved or declined.",
		Detail: "Check URLs work once, for 10 minutes. Start the SSH login again to get a new one."})
}

// checkView builds the page of check info for the visitor.
func (c *Console) checkViewOf(r *http.Request, info control.CheckInfo) (checkView, error) {
	ctx := r.Context()
	m, err := c.srv.SignInMethodsOf(ctx, info.User.ID)
	if err != nil {
		return checkView{}, err
	}
	v := checkView{
		ID: info.ID, Token: c.formToken("check", info.ID), User: info.User.Email,
		From: c.labelOf(ctx, info.SrcNode), To: c.labelOf(ctx, info.DstNode), LocalUser: info.LocalUser,
		Expires:  info.Expires.UTC().Format("15:04:05 MST, 2 Jan 2006"),
		Password: m.Password,
		SSO:      c.o.OIDC != nil && (m.OIDCIssuer != "" || !m.Password),
		Email:    info.User.Email,
	}
	if v.SSO {
		v.Issuer = c.o.OIDC.Issuer()
	}
	if s := c.pageSignIn(r); s != nil {
		v.SignedInAs, v.OtherUser = s.User.Email, s.User.ID != info.User.ID
	}
	return v, nil
}

func (c *Console) showCheck(w http.ResponseWriter, r *http.Request, status int, info control.CheckInfo, edit func(*checkView)) {
	v, err := c.checkViewOf(r, info)
	if errors.Is(err, control.ErrNotFound) {
		c.checkNotFound(w)
		return
	}
	if err != nil {
		c.pageError(w, r, err)
		return
	}
	if edit != nil {
		edit(&v)
	}
	c.render(w, status, checkTemplate, pageData{Title: "Approve SSH login", Body: v})
}

// checkPage shows a held login: GET /check/{id}.
func (c *Console) checkPage(w http.ResponseWriter, r *http.Request) {
	info, err := c.srv.PendingCheck(r.Context(), r.PathValue("id"))
	if err != nil {
		c.checkNotFound(w)
		return
	}
	c.showCheck(w, r, http.StatusOK, info, nil)
}

// checkPost approves (with the user's password) or declines a held login: POST /check/{id}.
func (c *Console) checkPost(w http.ResponseWriter, r *http.Request) {
	if !c.readPageForm(w, r) {
		return
	}
	ctx := r.Context()
	id := r.PathValue("id")
	info, err := c.srv.PendingCheck(ctx, id)
	if err != nil {
		c.checkNotFound(w)
		return
	}
	if !c.validToken(r.PostFormValue("token"), "check", id) {
		c.renderMessage(w, http.StatusForbidden, "Refused", message{Class: "error",
			Text: "This form has no valid token for this login request, so it was refused.", Link: "/check/" + id, LinkText: "Reload the page"})
		return
	}
	switch r.PostFormValue("action") {
	case "decline":
		err := c.srv.DeclineCheck(ctx, id)
		if errors.Is(err, control.ErrNotFound) {
			c.checkNotFound(w)
			return
		}
		if err != nil {
			c.pageError(w, r, err)
			return
		}
		c.renderMessage(w, http.StatusOK, "Declined", message{Class: "ok",
			Text:   "Declined — the login was refused. You can close this window.",
			Detail: fmt.Sprintf("The SSH login as %q on %s was told it was declined.", info.LocalUser, info.DstNode.Name)})
	case "approve":
		c.approveWithPassword(w, r, info)
	default:
		c.renderMessage(w, http.StatusBadRequest, "Bad form", message{Class: "error", Text: "The form asks for no known action."})
	}
}

// approveWithPassword checks the password given on the check page and lets the login in
// when it is the password of the check's user.
func (c *Console) approveWithPassword(w http.ResponseWriter, r *http.Request, info control.CheckInfo) {
	ctx := r.Context()
	email := strings.ToLower(strings.TrimSpace(r.PostFormValue("email")))
	if email == "" {
		email = info.User.Email
	}
	u, refused := c.checkPassword(ctx, r, email, r.PostFormValue("password"), control.AuthCheck,
		fmt.Sprintf("check page (SSH as %q on %s)", info.LocalUser, info.DstNode.Name))
	if refused != nil {
		if refused.err != nil {
			c.pageError(w, r, refused.err)
			return
		}
		refused.setRetryAfter(w)
		c.showCheck(w, r, refused.status, info, func(v *checkView) { v.Email, v.Error = email, sentence(refused.msg) })
		return
	}
	c.completeCheck(w, r, info, u, control.AuthPassword)
}

// completeCheck lets the held login in for u, who just authenticated with method.
func (c *Console) completeCheck(w http.ResponseWriter, r *http.Request, info control.CheckInfo, u control.User, method control.AuthMethod) {
	err := c.srv.CompleteCheck(r.Context(), info.ID, u.ID, method)
	switch {
	case errors.Is(err, control.ErrForbidden):
		c.showCheck(w, r, http.StatusForbidden, info, func(v *checkView) {
			v.Error = fmt.Sprintf("You signed in as %s, but this login waits for %s: only %s can approve it.", u.Email, info.User.Email, info.User.Email)
		})
		return
	case errors.Is(err, control.ErrNotFound):
		c.checkNotFound(w)
		return
	case err != nil:
		c.pageError(w, r, err)
		return
	}
	c.logf("console: %s approved SSH as %q on %s (%s)", u.Email, info.LocalUser, info.DstNode.Name, method)
	c.renderMessage(w, http.StatusOK, "Approved", message{Class: "ok",
		Text:   "Approved — you can close this window.",
		Detail: fmt.Sprintf("The SSH login as %q on %s continues by itself.", info.LocalUser, info.DstNode.Name)})
}

// checkSSO starts the single sign-on re-authentication of a check: GET /check/{id}/sso.
// (A link, not a form: the Content-Security-Policy's form-action would stop a form's
// redirect to the provider.)
func (c *Console) checkSSO(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := c.srv.PendingCheck(r.Context(), id); err != nil {
		c.checkNotFound(w)
		return
	}
	if c.o.OIDC == nil {
		c.renderMessage(w, http.StatusNotFound, "No single sign-on", message{Class: "error",
			Text: "This server has no identity provider configured.", Link: "/check/" + id, LinkText: "Back"})
		return
	}
	// The sealed sign-in state says it was started with Reauthenticate: only such a
	// sign-in (Identity.Fresh, its auth_time checked) completes the check.
	c.o.OIDC.StartWith(w, r, "/check/"+id, &oidc.StartOptions{Reauthenticate: true})
}

// finishCheckReauth completes a check after the provider re-authenticated its user.
func (c *Console) finishCheckReauth(w http.ResponseWriter, r *http.Request, id string, oid oidc.Identity, ident control.OIDCIdentity) {
	ctx := r.Context()
	info, err := c.srv.PendingCheck(ctx, id)
	if err != nil {
		c.checkNotFound(w)
		return
	}
	u, err := c.srv.OIDCUser(ctx, ident, false)
	if err != nil {
		c.srv.RecordAuthAttempt(ctx, oid.Email, control.AuthOIDC, control.AuthCheck, false, "check re-authentication refused: "+err.Error())
		if !errors.Is(err, control.ErrNotFound) && !errors.Is(err, control.ErrForbidden) {
			c.pageError(w, r, err)
			return
		}
		c.showCheck(w, r, http.StatusForbidden, info, func(v *checkView) {
			v.Error = fmt.Sprintf("You signed in as %s, who is not the user this login waits for (%s).", oid.Email, info.User.Email)
		})
		return
	}
	c.completeCheck(w, r, info, u, control.AuthOIDC)
}
