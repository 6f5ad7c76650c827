package agent

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// apiError decodes the local API's {"error": msg} answer.
func apiError(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var body struct{ Error string }
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("answer %q is not the local API's error form: %v", rec.Body.String(), err)
	}
	return body.Error
}

// TestServeDialRefusesBadRequests: a dial without the upgrade, the host or a valid port is
// refused with 400 and a message naming what is missing, before anything is dialled.
func TestServeDialRefusesBadRequests(t *testing.T) {
	a := &Agent{logf: t.Logf} // no node: nothing may be dialled
	for _, tc := range []struct{ query, upgrade, want string }{
		{"host=b&port=22", "", "Upgrade: " + DialUpgrade},
		{"host=b&port=22", "websocket", "Upgrade: " + DialUpgrade},
		{"port=22", DialUpgrade, `a host and a port from 1 to 65535 (got "", "22")`},
		{"host=b", DialUpgrade, `(got "b", "")`},
		{"host=b&port=0", DialUpgrade, `(got "b", "0")`},
		{"host=b&port=65536", DialUpgrade, `(got "b", "65536")`},
		{"host=b&port=ssh", DialUpgrade, `(got "b", "ssh")`},
	} {
		r := httptest.NewRequest("POST", "/localapi/v1/dial?"+tc.query, nil)
		if tc.upgrade != "" {
			r.Header.Set("Upgrade", tc.upgrade)
		}
		rec := httptest.NewRecorder()
		a.serveDial(rec, r)
		if msg := apiError(t, rec); rec.Code != http.StatusBadRequest || !strings.Contains(msg, tc.want) {
			t.Errorf("dial %s (Upgrade %q): %d %q; want 400 saying %q", tc.query, tc.upgrade, rec.Code, msg, tc.want)
		}
	}
}

// TestServePrefsRefusesBadBodies: prefs that do not parse, or set nothing, are refused with
// 400 before anything changes.
func TestServePrefsRefusesBadBodies(t *testing.T) {
	a := &Agent{logf: t.Logf}
	for body, want := range map[string]string{`{"ssh": tru`: "bad prefs", `{}`: "nothing to set", `{"ssh": "yes"}`: "bad prefs"} {
		rec := httptest.NewRecorder()
		a.servePrefs(rec, httptest.NewRequest("POST", "/localapi/v1/prefs", strings.NewReader(body)), 0)
		if msg := apiError(t, rec); rec.Code != http.StatusBadRequest || !strings.Contains(msg, want) {
			t.Errorf("prefs %s: %d %q; want 400 saying %q", body, rec.Code, msg, want)
		}
	}
}

// TestRemoveStaleSocket: the socket of a dead agent is removed; a live agent's is kept and
// the new agent refuses to start beside it.
func TestRemoveStaleSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.sock")
	if err := removeStaleSocket(path); err != nil {
		t.Fatalf("no socket yet: %v", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := removeStaleSocket(path); err == nil || !strings.Contains(err.Error(), "another agent is serving "+path) {
		t.Fatalf("beside a live agent: %v; want refused naming the socket", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // the agent died: its socket file stays
	if err := removeStaleSocket(path); err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("stale socket still there: %v", err)
	}
}
