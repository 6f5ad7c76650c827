package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"tsconnect/control"
)

// TestWasmFiles runs wasm's file-transfer tests (wasm/files_js_test.go) under node (GOOS=js):
// a wasm node lists, uploads and downloads over SFTP on its terminal session's connection,
// through the real relay to a real agent, and the files are compared byte for byte.
func TestWasmFiles(t *testing.T) {
	out := runWasmFiles(t, "^TestFiles(UploadDownload|Cancel|Refused)$", nil)
	for _, name := range []string{"TestFilesUploadDownload", "TestFilesCancel", "TestFilesRefused"} {
		if !strings.Contains(out, "--- PASS: "+name+" ") {
			t.Fatalf("%s did not pass (skipped?)\n%s", name, out)
		}
	}
}

// BenchmarkWasmFiles moves E2E_FILES_BENCH_MIB (default 256) MiB each way between a wasm node
// under node and a real agent over SFTP, and logs MiB/s and node's RSS (one run whatever b.N).
func BenchmarkWasmFiles(b *testing.B) {
	mibs := os.Getenv("E2E_FILES_BENCH_MIB")
	if mibs == "" {
		mibs = "256"
	}
	for range b.N {
		out := runWasmFiles(b, "TestFilesBench", []string{"E2E_FILES_BENCH_MIB=" + mibs})
		if !strings.Contains(out, "--- PASS: TestFilesBench ") {
			b.Fatalf("TestFilesBench did not pass\n%s", out)
		}
	}
}

// runWasmFiles starts a network with an SFTP agent, runs the wasm tests matching run under
// node and returns their output.
func runWasmFiles(t testing.TB, run string, env []string) string {
	tn := newTestNet(t)
	tn.startAgent("server")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	home, _ := os.UserHomeDir()
	denied := "/sys" // root may write nearly anywhere, not into sysfs
	if os.Geteuid() != 0 {
		denied = filepath.Join(t.TempDir(), "readonly")
		os.Mkdir(denied, 0o555)
	}
	goroot := strings.TrimSpace(string(must(exec.Command("go", "env", "GOROOT").Output())))
	cmd := exec.Command("go", "test", "-count=1", "-v", "-timeout=10m", "-tags=e2efiles", "-run="+run,
		"-exec="+filepath.Join(goroot, "lib", "wasm", "go_js_wasm_exec"), "../wasm/")
	cmd.Env = append(os.Environ(),
		"GOOS=js", "GOARCH=wasm",
		"NODE_OPTIONS=--experimental-websocket",
		"E2E_CONTROL_URL="+tn.url,
		"E2E_AUTH_KEY="+tn.authKey(control.AuthKeyOptions{Ephemeral: true, Reusable: true}),
		"E2E_HOST=server",
		"E2E_USER="+currentUser(t),
		"E2E_DIR="+dir,
		"E2E_HOME="+home,
		"E2E_DENIED="+denied,
	)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	for _, m := range regexp.MustCompile(`wasm files (via relay|bench): .*`).FindAll(out, -1) {
		t.Log(string(m))
	}
	if err != nil {
		t.Fatalf("wasm file tests: %v\n%s", err, out)
	}
	return string(out)
}
