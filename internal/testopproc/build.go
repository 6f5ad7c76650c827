package testopproc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

var (
	buildOnce sync.Once
	built     string
	buildErr  error
)

// binary builds the testop command once per test binary, in its own module's directory,
// into the repository's bin/ (ignored by git, removed by `make clean`), and returns its path.
func binary() (string, error) {
	buildOnce.Do(func() { built, buildErr = build() })
	return built, buildErr
}

// build runs go build in internal/testop and moves the result to bin/testop in one rename,
// so that test binaries building at the same time never run a half-written file.
func build() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("testopproc: finding the tsconnect module (go env GOMOD = %q): %v", gomod, err)
	}
	root := filepath.Dir(gomod)
	binDir := filepath.Join(root, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", fmt.Errorf("testopproc: %w", err)
	}
	tmp, err := os.MkdirTemp(binDir, ".testop-")
	if err != nil {
		return "", fmt.Errorf("testopproc: %w", err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("go", "build", "-o", filepath.Join(tmp, "testop"), "./cmd/testop")
	cmd.Dir = filepath.Join(root, "internal", "testop")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("testopproc: go build ./cmd/testop in %s: %v\n%s", cmd.Dir, err, out)
	}
	final := filepath.Join(binDir, "testop")
	if err := os.Rename(filepath.Join(tmp, "testop"), final); err != nil {
		return "", fmt.Errorf("testopproc: %w", err)
	}
	return final, nil
}
