package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"tsconnect/control"
	"tsconnect/node"
)

// TestStatusHostilePeerOSCannotForgeALine: a peer reports an OS string with a newline and
// terminal escapes that would draw a fake, trusted-looking peer line and retitle the
// terminal. `tsconnect status` against the real agent shows it escaped on the peer's own line.
func TestStatusHostilePeerOSCannotForgeALine(t *testing.T) {
	tn := newTestNet(t)
	tn.startAgent("server")
	forged := "linux\n100.64.9.9  trusted-db  admin@example.com  linux  online ssh\x1b[2K\x1b]0;pwned\a"
	n, err := node.New(node.Options{ControlURL: tn.url, AuthKey: tn.authKey(control.AuthKeyOptions{Ephemeral: true}), Hostname: "evil", OS: forged, Logf: prefixed(t, "evil: ")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })

	sock := tn.sockets["server"]
	deadline := time.Now().Add(20 * time.Second)
	var out string
	for time.Now().Before(deadline) {
		b, err := exec.Command(tsconnectBin, "--socket", sock, "status").Output()
		if out = string(b); err == nil && strings.Contains(out, "evil") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("status printed %d lines for 2 nodes (a forged line got through?):\n%s", len(lines), out)
	}
	if strings.ContainsAny(out, "\x1b\a") {
		t.Fatalf("status output carries raw terminal escapes: %q", out)
	}
	if !strings.Contains(lines[1], "evil") || !strings.Contains(lines[1], `linux\x0a100.64.9.9  trusted-db`) || !strings.Contains(lines[1], `\x1b]0;pwned\x07`) {
		t.Fatalf("the hostile peer's line does not show its OS escaped:\n%s", out)
	}
}
