package e2e

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// outageResume takes the relay down for outage with down, brings it back with up (which
// returns once the relay answers), and returns how long after that the session's output
// resumed; it fails t if that takes over limit.
func outageResume(t testing.TB, tk *ticker, outage, limit time.Duration, down, up func()) time.Duration {
	t.Helper()
	if _, ok := tk.waitLine(time.Now(), 5*time.Second); !ok {
		t.Fatal("the session prints nothing before the outage")
	}
	down()
	time.Sleep(outage)
	up()
	back := time.Now()
	d, ok := tk.waitLine(back, limit)
	if !ok {
		t.Fatalf("after a %v relay outage the open session's output did not resume within %v of the relay coming back", outage, limit)
	}
	return d
}

// standaloneOutage returns down and up functions for the `tsconnect derp` process at addr,
// started first by it: SIGKILL, and a restart on the same address and key.
func standaloneOutage(t testing.TB, addr string) (down, up func()) {
	keyFile := filepath.Join(t.TempDir(), "relay.key")
	relay := startRelay(t, addr, "--key-file", keyFile)
	down = func() {
		relay.cmd.Process.Signal(syscall.SIGKILL)
		relay.cmd.Wait()
	}
	up = func() { relay = startRelay(t, addr, "--key-file", keyFile) }
	return down, up
}

// TestOpenSessionResumesAfterRelayOutage: the only relay (`tsconnect derp`) is killed and
// comes back 4 s later on the same address; an SSH session that stayed open meanwhile
// prints again within 10 s of the relay answering (the goal is 2 s; see BenchmarkOutageResume).
func TestOpenSessionResumesAfterRelayOutage(t *testing.T) {
	addr := freePort(t)
	down, up := standaloneOutage(t, addr)
	tn := newTestNetWithRelay(t, addr)
	tn.startAgent("server")
	cl := sshDial(t, tn.startNode("laptop"), "server")
	tk := startTicker(t, cl)
	d := outageResume(t, tk, 4*time.Second, 10*time.Second, down, up)
	t.Logf("output resumed %v after the relay came back", d.Round(time.Millisecond))
	// A new session works too.
	if out, code := run(t, cl, "echo after", nil); string(out) != "after\n" || code != 0 {
		t.Fatalf("new session after the outage: %q exit %d", out, code)
	}
}
