package console

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"tsconnect/internal/safetext"
	"tsconnect/policy"
	"tsconnect/sshclient"
)

// SSHLinkPrefix starts a link to a session: /ssh/USER@HOST[?cmd=COMMAND] opens the console on
// that session once the visitor is signed in (the console page does the rest, at
// /admin/#/ssh/USER@HOST, with the same policy checks and launch as its "SSH…" dialog). A
// command in the link is only shown there; it runs after the user clicks Run.
const SSHLinkPrefix = "/ssh/"

// maxLinkHost bounds the host of a session link (a DNS name at most).
const maxLinkHost = 253

// sshLink answers a session link with a redirect to the console's page for it, or a page
// saying what is wrong with the link.
func (c *Console) sshLink(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		c.renderMessage(w, http.StatusMethodNotAllowed, "Method not allowed", message{Class: "error", Text: "A session link is opened with GET."})
		return
	}
	user, host, err := ParseSSHLink(strings.TrimPrefix(r.URL.Path, SSHLinkPrefix))
	if err == nil {
		err = sshclient.CheckCommand(r.URL.Query().Get("cmd"))
	}
	if err != nil {
		c.renderMessage(w, http.StatusBadRequest, "Bad session link", message{Class: "error",
			Text: "This link cannot open a session: " + err.Error() + ".", Link: "/admin/", LinkText: "Open the console"})
		return
	}
	to := "/admin/#/ssh/" + url.PathEscape(user) + "@" + url.PathEscape(host)
	if cmd := r.URL.Query().Get("cmd"); cmd != "" {
		to += "?" + url.Values{"cmd": {cmd}}.Encode()
	}
	c.setSecurityHeaders(w.Header())
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, to, http.StatusFound)
}

// ParseSSHLink splits a session link's "USER@HOST" and checks both: USER a local account name
// as the policy takes them, HOST a machine name or overlay address.
func ParseSSHLink(target string) (user, host string, err error) {
	user, host, ok := strings.Cut(target, "@")
	switch {
	case !ok:
		return "", "", fmt.Errorf("“%s” is not USER@HOST", safetext.Bounded(target, 80))
	case !policy.ValidLocalUser(user):
		return "", "", fmt.Errorf("“%s” is not a user name", safetext.Bounded(user, 80))
	case host == "" || len(host) > maxLinkHost || strings.Trim(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:") != "":
		return "", "", fmt.Errorf("“%s” is not a machine name or address", safetext.Bounded(host, 80))
	}
	return user, host, nil
}
