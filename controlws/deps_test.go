//go:build !js

package controlws

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// goTool runs the go command for GOOS=js GOARCH=wasm.
func goJS(t *testing.T, args ...string) []byte {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the go command")
	}
	goBin := filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	cmd := exec.Command(goBin, args...)
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

// TestJSDeps checks what the wasm build of this package pulls in. What is true (go1.26, coder/websocket
// v1.8.15): net/http is a dependency, imported only by coder/websocket's browser build for http.Header
// and http.Response in its signatures; none of our packages imports it, and nothing server-side is linked.
func TestJSDeps(t *testing.T) {
	out := goJS(t, "list", "-deps", "-f", `{{.ImportPath}}|{{join .Imports ","}}`, ".")
	allowedHTTPImporters := map[string]bool{"github.com/coder/websocket": true}
	banned := regexp.MustCompile(`^(tsconnect/control(/|$)|database/sql|github.com/jackc/|modernc.org/sqlite|github.com/mattn/go-sqlite3|golang.org/x/crypto/ssh|net/http/httptest)`)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, "|")
		if banned.MatchString(pkg) {
			t.Errorf("GOOS=js build of controlws links %s", pkg)
		}
		for _, imp := range strings.Split(imports, ",") {
			if imp != "net/http" {
				continue
			}
			if strings.HasPrefix(pkg, "tsconnect/") {
				t.Errorf("%s imports net/http under GOOS=js: give its files that need net/http a //go:build !js tag "+
					"(no HTTP stack and nothing server-side belongs in the wasm)", pkg)
			} else if !allowedHTTPImporters[pkg] && !strings.HasPrefix(pkg, "net/http/") {
				t.Errorf("%s imports net/http under GOOS=js (only coder/websocket is expected to)", pkg)
			}
		}
	}
}

// TestJSNoHTTPClient links a wasm program that dials control and checks the function names in its name
// section: no code of net/http's client (Client, Transport, persistConn) may be linked, only the package's
// init, which coder/websocket's import brings.
func TestJSNoHTTPClient(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "main.go")
	os.WriteFile(prog, []byte(`package main

import (
	"context"

	"tsconnect/controlws"
)

func main() {
	c, err := controlws.Dial(context.Background(), controlws.DialOptions{ServerURL: "http://127.0.0.1:1"})
	if err == nil {
		c.Register(context.Background(), controlws.RegisterRequest{})
		c.WatchMaps(context.Background(), controlws.MapRequest{}, func(*controlws.NetworkMap) {})
	}
}
`), 0o644)
	wasm := filepath.Join(dir, "probe.wasm")
	goJS(t, "build", "-o", wasm, prog)
	bin, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(bin, []byte("tsconnect/controlws.Dial")) {
		t.Fatal("no function names in the wasm: cannot check")
	}
	for _, sym := range []string{"net/http.(*Client)", "net/http.(*Transport)", "net/http.(*persistConn)", "net/http.send"} {
		if bytes.Contains(bin, []byte(sym)) {
			t.Errorf("the wasm links %s: the HTTP client stack crept in", sym)
		}
	}
	t.Logf("probe wasm: %d bytes", len(bin))
}
