package console

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"

	"tsconnect/controlws"
)

// The web-flow pages (check, node login, the OIDC callback) are rendered on the server with
// html/template, which escapes every value for where it lands: a node named
// <img src=x onerror=…> shows as text. They carry no scripts; forms post to this origin
// only (the Content-Security-Policy's form-action) and carry a token bound to what they act on.

const pageLayout = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{{with .Refresh}}<meta http-equiv="refresh" content="{{.}}">{{end}}
<title>{{.Title}} · tsconnect</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;color:#1c2230;background:#f5f6f8;margin:0}
main{max-width:34rem;margin:3rem auto;padding:1.5rem 2rem;background:#fff;border:1px solid #d9dce3;border-radius:8px}
h1{font-size:1.35rem;margin:0 0 1rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;margin:1rem 0}
dt{color:#5a6272}dd{margin:0;overflow-wrap:anywhere}
.who{color:#5a6272;font-size:.9rem}
label{display:block;margin:.6rem 0}
input[type=email],input[type=password]{display:block;width:100%;box-sizing:border-box;padding:.45rem;font:inherit;border:1px solid #b8bdc8;border-radius:4px}
button,.button{display:inline-block;padding:.45rem 1rem;font:inherit;border-radius:4px;border:1px solid #2456c7;background:#2f66e0;color:#fff;text-decoration:none;cursor:pointer}
.secondary{background:#fff;color:#2456c7}
.danger{background:#fff;color:#b3261e;border-color:#b3261e}
.row{display:flex;gap:.6rem;flex-wrap:wrap;align-items:center;margin-top:1rem}
.error{color:#b3261e;background:#fdecea;padding:.5rem .75rem;border-radius:4px}
.ok{color:#1e6b30;background:#e6f4ea;padding:.5rem .75rem;border-radius:4px}
.note{color:#5a6272}
hr{border:0;border-top:1px solid #e3e5ea;margin:1.25rem 0}
</style>
</head><body><main>
{{template "content" .}}
</main></body></html>
`

// page parses a page's "content" template into the shared layout; defs are more
// templates ({{define}}s) it uses.
func page(content string, defs ...string) *template.Template {
	t := template.Must(template.New("layout").Parse(pageLayout))
	for _, d := range defs {
		template.Must(t.Parse(d))
	}
	return template.Must(t.Parse(`{{define "content"}}` + content + `{{end}}`))
}

// pageData is what every page's template gets; Body is the page's own data.
type pageData struct {
	Title   string
	Refresh string // a meta refresh's content ("0;url=/admin/"), or ""
	Body    any
}

// messagePage shows a heading, a message, and optionally a link.
var messagePage = page(`<h1>{{.Title}}</h1>
<p class="{{.Body.Class}}" {{if eq .Body.Class "error"}}role="alert"{{end}}>{{.Body.Text}}</p>
{{with .Body.Detail}}<p class="note">{{.}}</p>{{end}}
{{with .Body.Link}}<p><a href="{{.}}">{{$.Body.LinkText}}</a></p>{{end}}`)

type message struct {
	Class          string // "ok", "error" or "note"
	Text, Detail   string
	Link, LinkText string
}

// render writes a page with the console's security headers.
func (c *Console) render(w http.ResponseWriter, status int, t *template.Template, d pageData) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, d); err != nil {
		c.logf("console: rendering %q: %v", d.Title, err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	c.setSecurityHeaders(h)
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// renderMessage answers with a message page.
func (c *Console) renderMessage(w http.ResponseWriter, status int, title string, m message) {
	c.render(w, status, messagePage, pageData{Title: title, Body: m})
}

// readPageForm checks a page's form post (same origin, at most maxBody) and parses it;
// on refusal it has answered with a page and returns false.
func (c *Console) readPageForm(w http.ResponseWriter, r *http.Request) bool {
	if !c.pageSameOrigin(w, r) {
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	err := r.ParseForm()
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		c.renderMessage(w, http.StatusRequestEntityTooLarge, "Form too large", message{Class: "error",
			Text: fmt.Sprintf("The form is larger than %d bytes, so it was refused.", tooBig.Limit)})
		return false
	}
	if err != nil {
		c.renderMessage(w, http.StatusBadRequest, "Bad form", message{Class: "error", Text: "The form could not be read: " + err.Error()})
		return false
	}
	return true
}

// pageSameOrigin is sameOrigin for the HTML pages: a refusal is a page, not JSON.
func (c *Console) pageSameOrigin(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if (origin != "" && strings.EqualFold(origin, c.origin)) || (origin == "" && r.Header.Get("Sec-Fetch-Site") == "same-origin") {
		return true
	}
	what := "no Origin header"
	if origin != "" {
		what = fmt.Sprintf("Origin %q", origin)
	}
	c.renderMessage(w, http.StatusForbidden, "Refused", message{Class: "error",
		Text: fmt.Sprintf("This form was not sent from %s (%s), so it was refused.", c.origin, what)})
	return false
}

// formToken is the token a page's forms carry: an HMAC, under a secret of the store (the
// same for every replica), of what the form acts on (e.g. "check", id). A form from elsewhere cannot
// carry it; a form of one check is no good for another.
func (c *Console) formToken(parts ...string) string {
	m := hmac.New(sha256.New, c.formKey[:])
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// validToken reports whether a submitted form token is the one for parts.
func (c *Console) validToken(got string, parts ...string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(c.formToken(parts...))) == 1
}

// pageSignIn returns the visitor's console sign-in, if any; no answer is written.
func (c *Console) pageSignIn(r *http.Request) *caller {
	ck, err := r.Cookie(CookieName)
	if err != nil || ck.Value == "" {
		return nil
	}
	ws, err := c.srv.SignInByToken(r.Context(), ck.Value)
	if err != nil {
		return nil
	}
	return callerOf(ws, ck.Value)
}

// nodeLabel is how the pages name a machine: its name and its owner or tags, so that a
// look-alike name cannot pass for another machine.
type nodeLabel struct {
	Name  string
	Owner string // "" when tagged
	Tags  []string
}

func (c *Console) labelOf(ctx context.Context, n controlws.Node) nodeLabel {
	l := nodeLabel{Name: n.Name, Tags: n.Tags}
	if len(n.Tags) == 0 && n.User != 0 {
		if u, err := c.srv.UserByID(ctx, n.User); err == nil {
			l.Owner = u.Email
		} else {
			l.Owner = fmt.Sprintf("user %d", n.User)
		}
	}
	return l
}
