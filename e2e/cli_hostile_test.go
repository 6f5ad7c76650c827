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
// terminal. The registration is refused, naming the field (by the node's own client, and by
// control again for a client that skips the check: TestOversizedHostinfoIsRefusedAndOldStateKept),
// so the string never reaches another node; `tsconnect status` on the real agent shows one line.
// (The CLI escapes whatever a peer's entry holds all the same: TestStatusPeerEscapesCannotForgeALine.)
func TestStatusHostilePeerOSCannotForgeALine(t *testing.T) {
	tn := newTestNet(t)
	tn.startAgent("server")
	forged := "linux\n100.64.9.9  trusted-db  ssh\x1b[2K\x1b]0;pwned\a"
	n, err := node.New(node.Options{ControlURL: tn.url, AuthKey: tn.authKey(control.AuthKeyOptions{Ephemeral: true}), Hostname: "evil", OS: forged, Logf: prefixed(t, "evil: ")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = n.Start(ctx)
	if err == nil {
		n.Close()
		t.Fatal("a node reporting an OS with a newline and escapes was let in")
	}
	if !strings.Contains(err.Error(), "os") {
		t.Fatalf("the refusal does not name the field: %v", err)
	}
	n.Close()

	b, err := exec.Command(tsconnectBin, "--socket", tn.sockets["server"], "status").Output()
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1 || strings.Contains(out, "evil") || strings.Contains(out, "trusted-db") || strings.ContainsAny(out, "\x1b\a") {
		t.Fatalf("status shows more than the agent itself:\n%s", out)
	}
}
