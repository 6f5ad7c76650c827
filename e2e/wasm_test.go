package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"tsconnect/control"
)

// TestWasmBulk runs e2e/wasmbulk under node (GOOS=js): a wasm node moves 32 MiB each way
// through the real relay to a real agent, three runs in a row (E2E_WASM_RUNS for more, as
// `make bench` does), none may hang.
func TestWasmBulk(t *testing.T) {
	runs := 3
	if v, err := strconv.Atoi(os.Getenv("E2E_WASM_RUNS")); err == nil && v > 0 {
		runs = v
	}
	tn := newTestNet(t)
	tn.startAgent("server")
	file := filepath.Join(t.TempDir(), "bulk.bin")
	data := make([]byte, 32<<20)
	rand.Read(data)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	goroot := strings.TrimSpace(string(must(exec.Command("go", "env", "GOROOT").Output())))
	cmd := exec.Command("go", "test", "-count="+strconv.Itoa(runs), "-v", "-timeout=10m",
		"-exec="+filepath.Join(goroot, "lib", "wasm", "go_js_wasm_exec"), "./wasmbulk/")
	cmd.Env = append(os.Environ(),
		"GOOS=js", "GOARCH=wasm",
		"NODE_OPTIONS=--experimental-websocket",
		"E2E_CONTROL_URL="+tn.url,
		"E2E_CONTROL_KEY="+tn.srv.PublicKey().String(),
		"E2E_AUTH_KEY="+tn.authKey(control.AuthKeyOptions{Ephemeral: true, Reusable: true}),
		"E2E_HOST=server",
		"E2E_USER="+currentUser(t),
		"E2E_FILE="+file,
		"E2E_FILE_SHA256="+hex.EncodeToString(sum[:]),
	)
	out, err := cmd.CombinedOutput()
	for _, m := range regexp.MustCompile(`wasm node via relay: .*`).FindAll(out, -1) {
		t.Log(string(m))
	}
	if err != nil {
		t.Fatalf("wasm bulk test (%s/%s host): %v\n%s", runtime.GOOS, runtime.GOARCH, err, out)
	}
	if n := strings.Count(string(out), "--- PASS: TestBulk"); n != runs {
		t.Fatalf("want %d passing runs, got %d\n%s", runs, n, out)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
