package e2e

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"tsconnect/control"
	"tsconnect/node"
)

// dialPolicy lets every node reach ports 7 (echo) and 19 (a source) of the others, nothing else.
const dialPolicy = `{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:7,19"]}]}`

// TestWasmDial runs wasm's stream tests (wasm/dial_js_test.go) under node (GOOS=js): a wasm
// node dials TCP services on a real node's overlay address through the real relay: 64 MiB
// echoed with the same sha256, a reader that reads nothing holds the sender back, and a port
// the target's policy refuses fails at once.
func TestWasmDial(t *testing.T) {
	tn := startTestNet(t, nil, dialPolicy)
	target := tn.startNode("target")
	serveTCP(t, target, 7, func(c net.Conn) { io.Copy(c, c) })
	serveTCP(t, target, 19, func(c net.Conn) {
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	goroot := strings.TrimSpace(string(must(exec.Command("go", "env", "GOROOT").Output())))
	cmd := exec.Command("go", "test", "-count=1", "-v", "-timeout=5m", "-tags=e2edial", "-run=^TestDial(Echo64|SlowReader|Refused)$",
		"-exec="+filepath.Join(goroot, "lib", "wasm", "go_js_wasm_exec"), "../wasm/")
	cmd.Env = append(os.Environ(),
		"GOOS=js", "GOARCH=wasm",
		"NODE_OPTIONS=--experimental-websocket",
		"E2E_CONTROL_URL="+tn.url,
		"E2E_AUTH_KEY="+tn.authKey(control.AuthKeyOptions{Ephemeral: true, Reusable: true}),
		"E2E_HOST=target",
		"E2E_ECHO_PORT=7", "E2E_SOURCE_PORT=19", "E2E_REFUSED_PORT=8",
	)
	out, err := cmd.CombinedOutput()
	for _, m := range regexp.MustCompile(`wasm dial via relay: .*`).FindAll(out, -1) {
		t.Log(string(m))
	}
	if err != nil {
		t.Fatalf("wasm dial tests: %v\n%s", err, out)
	}
	for _, name := range []string{"TestDialEcho64", "TestDialSlowReader", "TestDialRefused"} {
		if !strings.Contains(string(out), "--- PASS: "+name+" ") {
			t.Fatalf("%s did not pass (skipped?)\n%s", name, out)
		}
	}
}

// serveTCP runs handle for each connection to port of n's overlay addresses until the test ends.
func serveTCP(t testing.TB, n *node.Node, port uint16, handle func(net.Conn)) {
	t.Helper()
	ln, err := n.Listen(port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
}
