package main

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
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
			if d == b || strings.HasPrefix(d, b+"/") {
				t.Errorf("the wasm links %s (banned: %s); find who imports it with: GOOS=js GOARCH=wasm go list -deps -f '{{.ImportPath}}: {{.Imports}}' ./wasm", d, b)
			}
		}
	}
}

// TestOnlyBridgeImportsSyscallJS keeps every other file of the wasm host-testable.
func TestOnlyBridgeImportsSyscallJS(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(`"syscall/js"`)) && f != "bridge_js.go" && !strings.HasSuffix(f, "_test.go") {
			t.Errorf("%s imports syscall/js; only bridge_js.go may", f)
		}
	}
}

// Size budget of the browser build (DESIGN.md): 14 MB raw; 2.8 MB brotli, checked by the
// front-end build's size report (the Go standard library has no brotli). gzip is logged.
const maxRawSize = 14_000_000

func TestWasmBuildSize(t *testing.T) {
	out := filepath.Join(t.TempDir(), "tsconnect.wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Env = jsEnv()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("GOOS=js GOARCH=wasm go build ./wasm: %v\n%s", err, b)
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
	t.Logf("tsconnect.wasm: %d bytes raw (%.2f MB), %d bytes gzip -9 (%.2f MB)", len(b), float64(len(b))/1e6, gz.Len(), float64(gz.Len())/1e6)
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
