package console

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestSSHLinkRedirects(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	for _, tc := range []struct{ path, want string }{
		{"/ssh/root@web1", "/admin/#/ssh/root@web1"},
		{"/ssh/daemon@100.64.0.7", "/admin/#/ssh/daemon@100.64.0.7"},
		{"/ssh/alice@web1?cmd=" + url.QueryEscape("tmux new -A -s main"), "/admin/#/ssh/alice@web1?cmd=tmux+new+-A+-s+main"},
	} {
		a := c.do("GET", tc.path, nil)
		if a.status != http.StatusFound || a.header.Get("Location") != tc.want {
			t.Errorf("GET %s = %d to %q, want 302 to %q", tc.path, a.status, a.header.Get("Location"), tc.want)
		}
		if a.header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: no Content-Security-Policy", tc.path)
		}
	}
}

func TestSSHLinkRefusesBadLinks(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	for _, tc := range []struct{ path, says string }{
		{"/ssh/web1", "is not USER@HOST"},
		{"/ssh/-oProxyCommand=x@web1", "is not a user name"},
		{"/ssh/root@web1%3Cscript%3E", "is not a machine name or address"},
		{"/ssh/root@" + strings.Repeat("a", 300), "is not a machine name or address"},
		{"/ssh/root@web1?cmd=" + strings.Repeat("x", 4097), "more than 4096"},
		{"/ssh/root@web1?cmd=a%00b", "NUL"},
	} {
		a := c.do("GET", tc.path, nil)
		if a.status != http.StatusBadRequest || !strings.Contains(string(a.raw), tc.says) || a.header.Get("Location") != "" {
			t.Errorf("GET %.60s = %d %q, want 400 saying %q", tc.path, a.status, a.raw, tc.says)
		}
		if strings.Contains(string(a.raw), "<script>") {
			t.Errorf("GET %.60s: the page echoes markup", tc.path)
		}
	}
	if a := c.do("POST", "/ssh/root@web1", nil); a.status != http.StatusMethodNotAllowed {
		t.Errorf("POST a session link = %d, want 405", a.status)
	}
}
