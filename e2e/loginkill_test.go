//go:build linux

package e2e

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var formTokenRe = regexp.MustCompile(`name="token" value="([^"]+)"`)

// postLoginForm posts the /login/ID page's form with action and fields, after reading its
// token from the page; it returns the answer's status and body.
func postLoginForm(t *testing.T, hc *http.Client, base, id, action string, fields url.Values) (int, string) {
	t.Helper()
	return postPageForm(t, hc, base, "/login/"+id, action, fields)
}

// postPageForm posts the form of the page at base+path with action and fields, after
// reading its token from the page; it returns the answer's status and body.
func postPageForm(t *testing.T, hc *http.Client, base, path, action string, fields url.Values) (int, string) {
	t.Helper()
	resp, err := hc.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := formTokenRe.FindSubmatch(page)
	if resp.StatusCode != 200 || m == nil {
		t.Fatalf("GET %s: %d, no form token in:\n%s", path, resp.StatusCode, page)
	}
	fields.Set("token", string(m[1]))
	fields.Set("action", action)
	req, _ := http.NewRequest("POST", base+path, strings.NewReader(fields.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestUpInteractiveLoginControlKilled: control, a process, is killed with SIGKILL while
// `tsconnect up` waits for a sign-in at its /login/ID URL, and started again on the same
// state: signing in at that URL on the login page (password, then "Add") registers the
// machine, and `tsconnect up` run again on the same state comes up as that node at once.
func TestUpInteractiveLoginControlKilled(t *testing.T) {
	dir, adir := t.TempDir(), t.TempDir()
	addr := freePort(t)
	base := "http://" + addr
	ctrl := startProc(t, "control", "--listen", addr, "--state", dir)
	waitHTTP(t, base+"/")
	if out, err := cliStdin("a password of some length\n", "users", "create", "--state", dir, "--password-stdin", "ada@example.com"); err != nil {
		t.Fatalf("users create: %v\n%s", err, out)
	}
	first := startUp(t, base, adir)
	id := first.loginID(t)

	ctrl.cmd.Process.Signal(syscall.SIGKILL)
	ctrl.cmd.Wait()
	first.cmd.Process.Signal(syscall.SIGTERM)
	first.cmd.Wait()
	startProc(t, "control", "--listen", addr, "--state", dir)
	waitHTTP(t, base+"/")

	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	status, body := postLoginForm(t, hc, base, id, "signin", url.Values{"email": {"ada@example.com"}, "password": {"a password of some length"}})
	if status != 200 || !strings.Contains(body, `value="confirm"`) {
		t.Fatalf("signing in at the login URL shown before the kill: %d\n%s", status, body)
	}
	if status, body = postLoginForm(t, hc, base, id, "confirm", url.Values{}); status != 200 {
		t.Fatalf("adding the machine: %d\n%s", status, body)
	}

	again := startUp(t, base, adir)
	select {
	case <-again.up:
	case id2 := <-again.ids:
		t.Fatalf("tsconnect up asked for another sign-in (%s) after the machine was added", id2)
	case <-time.After(30 * time.Second):
		t.Fatal("tsconnect up did not come up after the sign-in at the old URL")
	}
}
