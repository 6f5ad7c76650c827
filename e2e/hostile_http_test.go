package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// consoleRoutes are the console's and API's routes, with a method each.
var consoleRoutes = [][2]string{
	{"POST", "/api/v1/login"}, {"POST", "/api/v1/logout"}, {"GET", "/api/v1/me"}, {"PUT", "/api/v1/me/password"},
	{"GET", "/api/v1/auth-methods"}, {"GET", "/api/v1/oidc/start"}, {"GET", "/api/v1/nodes"},
	{"GET", "/api/v1/nodes/1/ssh-users"}, {"POST", "/api/v1/nodes/1/ssh-launch"}, {"DELETE", "/api/v1/nodes/1"},
	{"PUT", "/api/v1/nodes/1/tags"}, {"POST", "/api/v1/nodes/1/expire"}, {"GET", "/api/v1/policy"},
	{"PUT", "/api/v1/policy"}, {"POST", "/api/v1/policy/validate"}, {"GET", "/api/v1/policy/versions"},
	{"GET", "/api/v1/policy/versions/1"}, {"POST", "/api/v1/policy/versions/1/restore"}, {"GET", "/api/v1/keys"}, {"POST", "/api/v1/keys"},
	{"DELETE", "/api/v1/keys/1"}, {"GET", "/api/v1/users"}, {"POST", "/api/v1/users"}, {"DELETE", "/api/v1/users/99"},
	{"PUT", "/api/v1/users/99/password"}, {"GET", "/api/v1/api-tokens"}, {"POST", "/api/v1/api-tokens"},
	{"DELETE", "/api/v1/api-tokens/1"}, {"GET", "/api/v1/audit"}, {"GET", "/api/v1/nowhere"},
	{"GET", "/admin/"}, {"GET", "/check/nosuchcheck"}, {"POST", "/check/nosuchcheck"}, {"GET", "/check/nosuchcheck/sso"},
	{"GET", "/login/nosuchlogin"}, {"POST", "/login/nosuchlogin"}, {"GET", "/auth/oidc/start"},
	{"GET", "/auth/oidc/callback?state=x&code=y"},
}

// hostileClient is an admin's browser on the console at url.
type hostileClient struct {
	hc   *http.Client
	url  string
	csrf string
}

func (h *hostileClient) send(method, path string, body io.Reader, hdr map[string]string) (int, string, error) {
	req, err := http.NewRequest(method, h.url+path, body)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Origin", h.url)
	req.Header.Set("X-CSRF-Token", h.csrf)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := h.hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), nil
}

// vmHWM is the process's peak resident memory in KiB (Linux).
func vmHWM(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

// TestHostileHTTPToEveryConsoleRoute: as an admin and as a stranger, every console and
// API route gets a 2 MiB body, a 200 KiB header, a 100 KiB query and a deeply nested JSON
// body: the answers are 413, 431 or 4xx naming the problem, each within seconds, control
// does not panic, keeps serving, and its peak memory stays bounded.
func TestHostileHTTPToEveryConsoleRoute(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	url := "http://" + addr
	ctrl := startProc(t, "control", "--listen", addr, "--state", dir)
	waitHTTP(t, url+"/")
	if out, err := cliStdin("admin password\n", "users", "create", "--state", dir, "--admin", "--password-stdin", "admin@example.com"); err != nil {
		t.Fatalf("users create: %v\n%s", err, out)
	}
	jar, _ := cookiejar.New(nil)
	admin := &hostileClient{hc: &http.Client{Jar: jar, Timeout: 20 * time.Second}, url: url}
	st, body, err := admin.send("POST", "/api/v1/login", strings.NewReader(`{"email":"admin@example.com","password":"admin password"}`), nil)
	var me struct{ CSRFToken string }
	if err != nil || st != 200 || json.Unmarshal([]byte(body), &me) != nil {
		t.Fatalf("admin login: %d %s %v", st, body, err)
	}
	admin.csrf = me.CSRFToken
	stranger := &hostileClient{hc: &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, url: url}

	hugeBody := append([]byte(`{"email":"`), bytes.Repeat([]byte("a"), 2<<20)...)
	mustRead := map[string]bool{"/api/v1/login": true, "/api/v1/me/password": true, "/api/v1/policy": true,
		"/api/v1/policy/validate": true, "/api/v1/keys": true, "/api/v1/users": true}
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	hugeHeader := strings.Repeat("h", 200<<10)
	longQuery := "?q=" + strings.Repeat("q", 100<<10)
	for _, who := range []*hostileClient{admin, stranger} {
		for _, rt := range consoleRoutes {
			method, path := rt[0], rt[1]
			name := fmt.Sprintf("%s %s (admin %v)", method, path, who == admin)
			if path == "/api/v1/logout" {
				continue // tested last: it ends the admin's session (without one it just clears the cookie)
			}
			// A body over every bound.
			if method != "GET" {
				st, body, err := who.send(method, path, bytes.NewReader(hugeBody), nil)
				switch {
				case err != nil:
					// The server may close the connection while the client still writes.
					t.Logf("%s with 2 MiB: %v", name, err)
				case st == 413 && !strings.Contains(body, "larger than"):
					t.Errorf("%s with 2 MiB: 413 without naming the bound: %s", name, body)
				case st < 400 || st >= 500 || len(body) == 0:
					t.Errorf("%s with 2 MiB: %d %s, want a 4xx refusal saying why", name, st, body)
				case (who == admin || path == "/api/v1/login") && mustRead[path] && st != 413:
					t.Errorf("%s with 2 MiB: %d %s, want 413", name, st, body)
				}
				st, body, err = who.send(method, path, strings.NewReader(deep), nil)
				if err != nil || st < 400 || st >= 500 {
					t.Errorf("%s with deeply nested JSON: %d %q %v, want a 4xx refusal", name, st, body[:min(len(body), 200)], err)
				}
			}
			st, body, err := who.send(method, path, nil, map[string]string{"X-Hostile": hugeHeader})
			if err != nil || st != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("%s with a 200 KiB header: %d %q %v, want 431", name, st, body[:min(len(body), 200)], err)
			}
			st, body, err = who.send(method, path+longQuery, nil, nil)
			if strings.Contains(path, "?") {
				st, body, err = who.send(method, path+"&"+longQuery[1:], nil, nil)
			}
			if err != nil || st >= 500 {
				t.Errorf("%s with a 100 KiB query: %d %q %v", name, st, body[:min(len(body), 200)], err)
			}
		}
	}
	if st, body, err := admin.send("POST", "/api/v1/logout", bytes.NewReader(hugeBody), nil); err == nil && st != 413 && st != 204 {
		t.Errorf("logout with 2 MiB: %d %s", st, body)
	}
	if st, _, err := stranger.send("GET", "/", nil, nil); err != nil || st != 200 {
		t.Fatalf("control after the hostile requests: %d %v", st, err)
	}
	if strings.Contains(ctrl.out.String(), "panic") {
		t.Fatalf("control panicked:\n%s", ctrl.out)
	}
	hwm := vmHWM(t, ctrl.cmd.Process.Pid)
	t.Logf("control's peak RSS after the hostile requests: %d MiB", hwm>>10)
	if hwm > 400<<10 {
		t.Errorf("control's peak RSS %d MiB, want under 400 MiB", hwm>>10)
	}
}
