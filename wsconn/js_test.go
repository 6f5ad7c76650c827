//go:build !js

package wsconn

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestJS runs this package's tests for GOOS=js under node against a server started here: wasm
// cannot listen, so TestBrowser gets the server's URL in WSCONN_ECHO_URL.
func TestJS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the wasm tests under node")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is not installed: the js tests need it (Debian's nodejs)")
	}
	srv := newTestServer(t)
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "test", "-count=1", "-v", "-timeout=3m",
		"-exec="+filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", "go_js_wasm_exec"), ".")
	cmd.Env = append(os.Environ(),
		"GOOS=js", "GOARCH=wasm",
		"NODE_OPTIONS=--experimental-websocket", // node 20; a no-op from node 22 on
		"WSCONN_ECHO_URL="+wsBase(srv),
		"WSCONN_CLOSED_URL="+closedURL(t),
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("GOOS=js go test ./wsconn: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "--- SKIP") || !strings.Contains(string(out), "--- PASS: TestBrowser ") {
		t.Fatalf("the js tests did not all run:\n%s", out)
	}
	t.Logf("GOOS=js go test ./wsconn:\n%s", out)
}
