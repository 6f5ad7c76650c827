package testop

import (
	"html/template"
	"net/http"

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
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if r.Method == http.MethodGet {
		loginPage.Execute(w, data)
		return
	}
	email := r.PostFormValue("email")
	u, ok := op.checkPassword(email, r.PostFormValue("password"))
	if !ok {
		op.logf("testop: wrong email or password for %q", email)
		data.Email, data.Error = email, "Wrong email or password."
		w.WriteHeader(http.StatusUnauthorized)
		loginPage.Execute(w, data)
		return
	}
	for _, s := range ar.GetRequestedScopes() {
		ar.GrantScope(s) // fosite has checked them against the client's scopes
	}
	resp, err := op.provider.NewAuthorizeResponse(ctx, ar, op.session(u))
	if err != nil {
		op.logf("testop: authorization refused: %v", fositeReason(err))
		op.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	op.logf("testop: %s signed in for client %s", u.Email, data.Client)
	op.provider.WriteAuthorizeResponse(ctx, w, ar, resp)
}
