package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"tsconnect/control"
	"tsconnect/internal/safetext"
	"tsconnect/oidc"
)

// Single sign-on with an OpenID Provider (Options.OIDC). A sign-in starts at
// /auth/oidc/start (or /api/v1/oidc/start) and ends at OIDCCallbackPath, which creates the
// user on first sign-in (a member), keeps their groups, records the provider's auth_time
// as the user's last authentication, starts a console sign-in and moves
// the browser on with a page whose meta refresh is a same-site navigation: a redirect chain
// that began at the provider would not send the fresh SameSite=Strict cookie.

// OIDCCallbackPath is the console's OpenID Connect redirect URI: the RP's RedirectURL is
// ServerURL + OIDCCallbackPath.
const OIDCCallbackPath = "/auth/oidc/callback"

// OIDCStartPath starts a single sign-on; ?returnTo=/admin/… says where to land.
const OIDCStartPath = "/auth/oidc/start"

type authMethodsJSON struct {
	Password bool        `json:"password"`
	OIDC     *oidcMethod `json:"oidc"`
}

type oidcMethod struct {
	Issuer   string `json:"issuer"`
	StartURL string `json:"startURL"` // navigate here (add ?returnTo=/admin/…) to sign in
}

// authMethods tells the login page how one may sign in.
func (c *Console) authMethods(w http.ResponseWriter, r *http.Request, _ *caller) {
	a := authMethodsJSON{Password: true}
	if c.o.OIDC != nil {
		a.OIDC = &oidcMethod{Issuer: c.o.OIDC.Issuer(), StartURL: OIDCStartPath}
	}
	writeJSON(w, http.StatusOK, a)
}

// consoleReturn is returnTo if a sign-in may land there (the console, or a node login
// page), else the console's home. Check pages are not allowed: only the check page's own
// re-authentication completes a check.
func consoleReturn(returnTo string) string {
	u, err := url.Parse(returnTo)
	if err != nil || u.Scheme != "" || u.Host != "" || strings.HasPrefix(returnTo, "//") || strings.ContainsAny(returnTo, "\\\r\n") {
		return "/admin/"
	}
	if strings.HasPrefix(u.Path, "/admin/") || (strings.HasPrefix(u.Path, "/login/") && u.RawQuery == "") {
		return returnTo
	}
	return "/admin/"
}

// oidcStart sends the browser to the provider to sign in.
func (c *Console) oidcStart(w http.ResponseWriter, r *http.Request) {
	if c.o.OIDC == nil {
		c.renderMessage(w, http.StatusNotFound, "No single sign-on", message{Class: "error",
			Text: "This server has no identity provider configured: sign in with your email and password.", Link: "/admin/", LinkText: "Back to the console"})
		return
	}
	c.o.OIDC.Start(w, r, consoleReturn(r.URL.Query().Get("returnTo")))
}

var signedInPage = page(`<h1>{{.Title}}</h1>
<p class="ok">Signed in as {{.Body.Email}}.</p>
<p><a href="{{.Body.Link}}">Continue</a></p>`)

type signedIn struct{ Email, Link string }

// oidcCallback finishes a sign-in at the provider's redirect.
func (c *Console) oidcCallback(w http.ResponseWriter, r *http.Request) {
	if c.o.OIDC == nil {
		c.renderMessage(w, http.StatusNotFound, "No single sign-on", message{Class: "error", Text: "This server has no identity provider configured."})
		return
	}
	ctx := r.Context()
	addr := c.clientAddr(r)
	id, returnTo, err := c.o.OIDC.Finish(w, r)
	if err != nil {
		// Anyone can send a callback with a made-up state: such refusals are coalesced per
		// client address (refusals.go), so a flood of them writes a row a minute, not each.
		write, more := true, ""
		if errors.Is(err, oidc.ErrState) {
			write, more = c.refusals.note("oidc-state\x00" + limitKey(c.clientIP(r)))
		}
		if write {
			c.srv.RecordAuthAttempt(ctx, "", control.AuthOIDC, control.AuthSignIn, false, "single sign-on from "+addr+" refused: "+err.Error()+more)
		}
		c.renderMessage(w, http.StatusForbidden, "Sign-in refused", message{Class: "error",
			Text: strings.TrimPrefix(err.Error(), "oidc: "), Link: "/admin/", LinkText: "Back to the console"})
		return
	}
	ident := control.OIDCIdentity{Issuer: id.Issuer, Subject: id.Subject, Email: id.Email, Name: id.Name, Groups: id.Groups}
	if u, perr := url.Parse(returnTo); perr == nil && strings.HasPrefix(u.Path, "/check/") && id.Fresh {
		c.finishCheckReauth(w, r, strings.TrimPrefix(u.Path, "/check/"), id, ident)
		return
	}
	u, err := c.srv.OIDCUser(ctx, ident, true)
	if err != nil {
		c.srv.RecordAuthAttempt(ctx, id.Email, control.AuthOIDC, control.AuthSignIn, false, "single sign-on from "+addr+" refused: "+err.Error())
		status := http.StatusForbidden
		if !errors.Is(err, control.ErrForbidden) {
			c.logf("console: single sign-on of %s: %v", safetext.Escape(id.Email), err)
			status = http.StatusInternalServerError
		}
		c.renderMessage(w, status, "Sign-in refused", message{Class: "error", Text: strings.TrimPrefix(err.Error(), "control: ")})
		return
	}
	// The sign-in counts (for check rules) at the provider's auth_time: a silent sign-in on
	// an old provider session proves only that old authentication, and one without
	// auth_time proves nothing.
	detail := "single sign-on with " + id.Issuer + " from " + addr
	if id.AuthTime.IsZero() {
		detail += " (the provider sent no auth_time: it does not count as a re-authentication)"
	} else {
		detail += ", authenticated there at " + id.AuthTime.UTC().Format(time.RFC3339)
	}
	if err := c.srv.RecordAuthAt(ctx, u.ID, control.AuthOIDC, control.AuthSignIn, id.AuthTime, detail); err != nil {
		c.pageError(w, r, err)
		return
	}
	token, _, err := c.srv.CreateSignIn(ctx, u.ID)
	if err != nil {
		c.pageError(w, r, err)
		return
	}
	c.setCookie(w, r, token, 0)
	c.logf("console: %s signed in with %s from %s", u.Email, id.Issuer, addr)
	returnTo = consoleReturn(returnTo)
	c.render(w, http.StatusOK, signedInPage, pageData{Title: "Signed in", Refresh: refreshTo(returnTo),
		Body: signedIn{Email: u.Email, Link: returnTo}})
}

// refreshTo is a meta refresh's content moving on to path (a path on this server).
func refreshTo(path string) string { return "0;url=" + path }

// pageError answers an unexpected error with a generic page; the details go to the log.
func (c *Console) pageError(w http.ResponseWriter, r *http.Request, err error) {
	c.logf("console: %s %s: %v", r.Method, safetext.Bounded(r.URL.Path, 0), err)
	c.renderMessage(w, http.StatusInternalServerError, "Something went wrong", message{Class: "error",
		Text: "Internal error; the server log has the details."})
}
