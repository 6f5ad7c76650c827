package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"tsconnect/controlws"
	"tsconnect/key"
)

// TestUpNamesTheVersionToRun: `tsconnect up` against a control server that speaks only a newer protocol
// version exits with one line naming the version to run, not a handshake failure or "control unreachable".
// The server is a stand-in that publishes its key and versions (what a newer control does at GET /key)
// and fails the test if the client goes on to open the control socket anyway.
func TestUpNamesTheVersionToRun(t *testing.T) {
	newer := controlws.Version + 1
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != controlws.KeyPath {
			t.Errorf("the client asked for %s of a server it shares no version with", r.URL)
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(controlws.KeyResponse{Key: key.NewPrivate().Public(), MinVersion: newer, MaxVersion: newer})
	}))
	defer hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tsconnectBin, "--socket", t.TempDir()+"/agent.sock", "up",
		"--login-server", hs.URL, "--auth-key", "tskey-unused", "--state", t.TempDir())
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("tsconnect up: %v; want exit status 1\n%s", err, out)
	}
	want := fmt.Sprintf("tsconnect up: this server speaks control protocol version %d, yours up to %d: upgrade tsconnect to a release speaking %d or later (control at %s)\n",
		newer, controlws.Version, newer, hs.URL)
	if !strings.HasSuffix(string(out), want) || strings.Contains(string(out), "unreachable") {
		t.Fatalf("tsconnect up said:\n%s\nwant it to end with:\n%s", out, want)
	}
}
