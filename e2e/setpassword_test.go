package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"os/exec"
	"strings"
	"testing"
)

// cliStdin runs tsconnect with stdin and returns its combined output and error.
func cliStdin(stdin string, args ...string) (string, error) {
	cmd := exec.Command(tsconnectBin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// consoleLogin logs in to the console at url with a fresh cookie jar; it returns the
// client and the status.
func consoleLogin(t *testing.T, url, email, password string) (*http.Client, int) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	req, _ := http.NewRequest("POST", url+"/api/v1/login", bytes.NewReader(body))
	req.Header.Set("Origin", url)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return hc, resp.StatusCode
}

func meStatus(t *testing.T, hc *http.Client, url string) int {
	t.Helper()
	resp, err := hc.Get(url + "/api/v1/me")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestCLISetPasswordEndsSessions: `tsconnect users set-password --password-stdin EMAIL`
// through the admin socket resets a password and ends the user's console sessions; it
// refuses to run without --password-stdin, and a bad --trusted-proxy stops control.
func TestCLISetPasswordEndsSessions(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	url := "http://" + addr
	startProc(t, "control", "--listen", addr, "--state", dir, "--trusted-proxy", "10.0.0.0/8,192.0.2.1")
	waitHTTP(t, url+"/")
	if out, err := cliStdin("first password\n", "users", "create", "--state", dir, "--password-stdin", "ada@example.com"); err != nil {
		t.Fatalf("users create: %v\n%s", err, out)
	}
	old, status := consoleLogin(t, url, "ada@example.com", "first password")
	if status != 200 || meStatus(t, old, url) != 200 {
		t.Fatalf("login with the first password: %d", status)
	}
	if out, err := cliStdin("", "users", "set-password", "--state", dir, "ada@example.com"); err == nil || !strings.Contains(out, "--password-stdin") {
		t.Fatalf("set-password without --password-stdin: %v\n%s", err, out)
	}
	if out, err := cliStdin("short\n", "users", "set-password", "--state", dir, "--password-stdin", "ada@example.com"); err == nil || !strings.Contains(out, "too short") {
		t.Fatalf("set-password with a short password: %v\n%s", err, out)
	}
	if out, err := cliStdin("second password\n", "users", "set-password", "--state", dir, "--password-stdin", "nobody@example.com"); err == nil || !strings.Contains(out, "nobody@example.com") {
		t.Fatalf("set-password of an unknown user: %v\n%s", err, out)
	}
	out, err := cliStdin("second password\n", "users", "set-password", "--state", dir, "--password-stdin", "ada@example.com")
	if err != nil || !strings.Contains(out, "sign-ins ended") {
		t.Fatalf("set-password: %v\n%s", err, out)
	}
	if s := meStatus(t, old, url); s != http.StatusUnauthorized {
		t.Fatalf("the old session after set-password: %d, want 401", s)
	}
	if _, s := consoleLogin(t, url, "ada@example.com", "first password"); s != http.StatusUnauthorized {
		t.Fatalf("the old password: %d, want 401", s)
	}
	if _, s := consoleLogin(t, url, "ada@example.com", "second password"); s != 200 {
		t.Fatalf("the new password: %d, want 200", s)
	}

	out, err = cliStdin("", "control", "--listen", freePort(t), "--state", t.TempDir(), "--trusted-proxy", "10.0.0.0/33")
	if err == nil || !strings.Contains(out, "--trusted-proxy") {
		t.Fatalf("control with a bad --trusted-proxy: %v\n%s", err, out)
	}
}
