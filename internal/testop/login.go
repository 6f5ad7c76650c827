package testop

import (
	"crypto/rand"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/ory/fosite"
)

// loginPage is the sign-in form. It posts back to the authorize URL with the same query,
// so the authorization request travels with the credentials.
var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to the test provider</title></head>
<body>
<h1>Sign in</h1>
<p>to continue to {{.Client}}</p>
{{if .Error}}<p role="alert" class="error">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
<label>Email <input type="email" name="email" autocomplete="username" value="{{.Email}}" required></label>
<label>Password <input type="password" name="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form>
</body></html>
`))

type loginData struct {
	Client, Action, Email, Error string
}

// authorize is the authorization endpoint. GET validates the request and shows the login
// form; POST (the form) checks the password and only then issues a code bound to the
// request's PKCE challenge and nonce.
func (op *OP) authorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, err := op.provider.NewAuthorizeRequest(ctx, r)
	if err != nil {
		op.logf("testop: authorization request refused: %v", fositeReason(err))
		op.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	if ar.GetRequestForm().Get("code_challenge") == "" {
		// fosite enforces PKCE when issuing the code; refusing here spares the user the form.
		err := fosite.ErrInvalidRequest.WithHint("PKCE is required: send code_challenge with code_challenge_method S256.")
		op.logf("testop: authorization request refused: %v", fositeReason(err))
		op.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	data := loginData{Client: ar.GetClient().GetID(), Action: "/authorize?" + r.URL.RawQuery}
	w.Header().Set("Cache-Control", "no-store")
	if r.Method == http.MethodGet {
		// A browser signed in here gets a code at once (single sign-on), unless the request
		// asks for a fresh login (prompt=login, max_age=0).
		fresh := strings.Contains(" "+ar.GetRequestForm().Get("prompt")+" ", " login ") || ar.GetRequestForm().Get("max_age") == "0"
		if u, at, ok := op.ssoUser(r); ok && !fresh {
			op.issue(w, r, ar, u, at, "silently (provider session)")
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		loginPage.Execute(w, data)
		return
	}
	email := r.PostFormValue("email")
	u, ok := op.checkPassword(email, r.PostFormValue("password"))
	if !ok {
		op.logf("testop: wrong email or password for %q", email)
		data.Email, data.Error = email, "Wrong email or password."
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		loginPage.Execute(w, data)
		return
	}
	now := time.Now()
	if op.opts.RememberSignIns {
		op.startSSO(w, u, now)
	}
	op.issue(w, r, ar, u, now, "with a password")
}

// issue answers an authorization request of u, who authenticated at authTime, with a code.
func (op *OP) issue(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, u User, authTime time.Time, how string) {
	ctx := r.Context()
	data := loginData{Client: ar.GetClient().GetID()}
	for _, s := range ar.GetRequestedScopes() {
		ar.GrantScope(s) // fosite has checked them against the client's scopes
	}
	resp, err := op.provider.NewAuthorizeResponse(ctx, ar, op.session(u, authTime))
	if err != nil {
		op.logf("testop: authorization refused: %v", fositeReason(err))
		op.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	op.logf("testop: %s signed in for client %s %s", u.Email, data.Client, how)
	op.provider.WriteAuthorizeResponse(ctx, w, ar, resp)
}

// ssoCookie is the provider's own sign-in cookie.
const ssoCookie = "testop_session"

// startSSO remembers that this browser signed in as u at authTime.
func (op *OP) startSSO(w http.ResponseWriter, u User, authTime time.Time) {
	v := rand.Text()
	op.mu.Lock()
	op.sessions[v] = ssoSession{email: strings.ToLower(u.Email), authTime: authTime}
	op.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Value: v, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// ssoUser is the user this browser is signed in as at the provider, and when they signed in.
func (op *OP) ssoUser(r *http.Request) (User, time.Time, bool) {
	c, err := r.Cookie(ssoCookie)
	if err != nil {
		return User{}, time.Time{}, false
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	s, ok := op.sessions[c.Value]
	if !ok {
		return User{}, time.Time{}, false
	}
	u, ok := op.users[s.email]
	return u, s.authTime, ok
}

// BackdateSignIns moves the time of every remembered sign-in (Options.RememberSignIns) d
// into the past, as if the browsers had signed in at the provider that long ago.
func (op *OP) BackdateSignIns(d time.Duration) {
	op.mu.Lock()
	defer op.mu.Unlock()
	for k, s := range op.sessions {
		s.authTime = s.authTime.Add(-d)
		op.sessions[k] = s
	}
}
