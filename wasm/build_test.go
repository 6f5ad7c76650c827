//go:build !js

package main

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// banned are packages that must never be linked into the browser build: the server side,
// database drivers and host-only terminal code. A prefix bans the package and its subpackages.
var banned = []string{
	"tsconnect/control",
	"tsconnect/sshd",
	"tsconnect/agent",
	"modernc.org/sqlite",
	"modernc.org/libc",
	"github.com/jackc/pgx",
	"github.com/creack/pty",
	"github.com/mattn/go-sqlite3",
	"database/sql",
	// The HTTP and TLS stacks cost megabytes; the browser's fetch and WebSocket do their jobs.
	"net/http",
	"crypto/tls",
	"github.com/coder/websocket",
	// What only the server side needs: the policy parser (the wasm gets compiled rules from
	// tsconnect/policy/rules), the admin console, single sign-on, the agent's SFTP server, the
	// CLI, and the test-only identity provider.
	"github.com/tailscale/hujson",
	"tsconnect/console",
	"tsconnect/oidc",
	"github.com/coreos/go-oidc",
	"golang.org/x/oauth2",
	"github.com/pkg/sftp",
	// SFTP lives in the file-transfer wasm (wasmfiles): the main one has no room for it.
	"tsconnect/sftpclient",
	"tsconnect/filexfer",
	"tsconnect/cmd",
	"tsconnect/internal/testop",
	"github.com/ory/fosite",
}

// notInServer are the banned entries the server binary does not link either (guards against
// what nothing here uses yet); every other entry must be a dependency of cmd/tsconnect, so a
// misspelt or moved path cannot make its ban silently match nothing.
var notInServer = map[string]bool{
	"github.com/creack/pty":       true,
	"github.com/mattn/go-sqlite3": true,
	"tsconnect/internal/testop":   true,
	"github.com/ory/fosite":       true,
	"tsconnect/sftpclient":        true,
	"tsconnect/filexfer":          true,
}

func jsEnv() []string { return append(os.Environ(), "GOOS=js", "GOARCH=wasm") }

func TestNoBannedPackagesInWasm(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", ".")
	cmd.Env = jsEnv()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps for js/wasm: %v\n%s", err, stderrOf(err))
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 {
		t.Fatalf("go list -deps returned only %d packages; the check would be meaningless", len(deps))
	}
	for _, d := range deps {
		for _, b := range banned {
			if isBanned(d, b) {
				t.Errorf("the wasm links %s (banned: %s); find who imports it with: GOOS=js GOARCH=wasm go list -deps -f '{{.ImportPath}}: {{.Imports}}' ./wasm", d, b)
			}
		}
	}
}

// isBanned reports whether package path d is a banned entry b or one of its subpackages.
func isBanned(d, b string) bool { return d == b || strings.HasPrefix(d, b+"/") }

// TestBannedPackagesAreReal checks that the ban list names packages the server really links:
// the host build of cmd/tsconnect must hit every entry that notInServer does not excuse.
func TestBannedPackagesAreReal(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "../cmd/tsconnect").Output()
	if err != nil {
		t.Fatalf("go list -deps ../cmd/tsconnect: %v\n%s", err, stderrOf(err))
	}
	deps := strings.Fields(string(out))
	for _, b := range banned {
		hit := false
		for _, d := range deps {
			hit = hit || isBanned(d, b)
		}
		if hit == notInServer[b] {
			if hit {
				t.Errorf("the server links %s now: drop it from notInServer", b)
			} else {
				t.Errorf("banned entry %s matches no package of the server build (misspelt or moved?)", b)
			}
		}
	}
}

// syscallJSBindings are the only files of the wasm build that may import syscall/js, so every
// other file stays host-testable. wsconn/dial_js.go binds the browser's WebSocket because
// coder/websocket's browser build costs 2.3 MB of net/http+TLS; internal/jsbridge holds what the two wasms' bridges share.
var syscallJSBindings = map[string]bool{"wasm/bridge_js.go": true, "wsconn/dial_js.go": true, "internal/jsbridge/jsbridge.go": true}

// TestOnlyBridgeImportsSyscallJS checks every file of our packages linked into the wasm.
func TestOnlyBridgeImportsSyscallJS(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}|{{.Dir}}|{{join .GoFiles \",\"}}", ".")
	cmd.Env = jsEnv()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps for js/wasm: %v\n%s", err, stderrOf(err))
	}
	found := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.SplitN(line, "|", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[0], "tsconnect/") || parts[2] == "" {
			continue
		}
		for _, f := range strings.Split(parts[2], ",") {
			b, err := os.ReadFile(filepath.Join(parts[1], f))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte(`"syscall/js"`)) {
				continue
			}
			name := strings.TrimPrefix(parts[0], "tsconnect/") + "/" + f
			if !syscallJSBindings[name] {
				t.Errorf("%s imports syscall/js; only %v may", name, keys(syscallJSBindings))
				continue
			}
			found++
		}
	}
	if found != len(syscallJSBindings) {
		t.Errorf("found %d of the %d syscall/js bindings %v: the check reads the wrong files", found, len(syscallJSBindings), keys(syscallJSBindings))
	}
}

func keys(m map[string]bool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Size budget of the browser build (docs/architecture.md): 14 MB raw for the wasm as shipped,
// after wasm-opt (scripts/wasmopt.mjs); 2.8 MB brotli, checked by the front-end build's size
// report (the Go standard library has no brotli). gzip is logged.
const maxRawSize = 14_000_000

func TestWasmBuildSize(t *testing.T) {
	dir := t.TempDir()
	linked := filepath.Join(dir, "linked.wasm")
	// The same flags as esbuild.config.js, so the build is the same bytes and wasm-opt's cache
	// holds its result after `npm run build`.
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", linked, ".")
	cmd.Env = jsEnv()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("GOOS=js GOARCH=wasm go build ./wasm: %v\n%s", err, b)
	}
	out := filepath.Join(dir, "tsconnect.wasm")
	cmd = exec.Command("node", filepath.Join("..", "scripts", "wasmopt.mjs"), linked, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node scripts/wasmopt.mjs: %v\n%s", err, b)
	}
	l, err := os.Stat(linked)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\x00asm")) {
		t.Fatalf("%s is not a WebAssembly module", out)
	}
	var gz bytes.Buffer
	w, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	w.Write(b)
	w.Close()
	t.Logf("tsconnect.wasm: %d bytes as Go linked it, %d bytes after wasm-opt (%.2f MB), %d bytes gzip -9 (%.2f MB)", l.Size(), len(b), float64(len(b))/1e6, gz.Len(), float64(gz.Len())/1e6)
	if len(b) > maxRawSize {
		t.Errorf("tsconnect.wasm is %d bytes, over the %d byte budget", len(b), maxRawSize)
	}
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
