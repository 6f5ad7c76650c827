package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"tsconnect/internal/eventually"
)

// TestExpiredPeerRefusedWithoutControl: a node registered under a 15 s key lifetime holds
// an SSH session on an agent; control stops (the standalone relay stays, so packets still
// flow); when the node's key expires the agent cuts the session with "Access revoked." and
// refuses a new login naming the expiry, by its own clock and the expiry in its last map.
func TestExpiredPeerRefusedWithoutControl(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatalf("needs root to log in as root (uid %d)", os.Geteuid())
	}
	ctx := context.Background()
	tn := newStandaloneRelayNet(t)
	if err := tn.srv.SetNodeKeyExpiry(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	srv := tn.startAgent("srv")
	if err := tn.srv.SetNodeKeyExpiry(ctx, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	laptop := tn.startNode("laptop")
	self := laptop.NetMap().Self
	exp := self.KeyExpiry
	if d := time.Until(exp); d <= 0 || d > 15*time.Second {
		t.Fatalf("the laptop's key expires in %v, want within 15 s", d)
	}
	eventually.True(t, "the laptop's key expiry in the agent's map", func() bool {
		p, ok := srv.Node().NetMap().PeerByName("laptop")
		return ok && p.KeyExpiry.Equal(exp)
	})
	cl, _, err := sshTry(t, laptop, "srv", "root")
	if err != nil {
		t.Fatalf("a login before the expiry: %v", err)
	}
	stderr, pid, done := liveSession(t, cl)

	tn.cs.Stop()
	if time.Now().After(exp) {
		t.Fatalf("the machine is too slow: the key expired (%v) before control stopped", exp)
	}
	select {
	case <-done:
		if time.Now().Before(exp) {
			t.Fatalf("the session ended before the key expired: stderr %q", stderr.String())
		}
	case <-time.After(time.Until(exp) + 20*time.Second):
		t.Fatal("the session outlived its source's key expiry")
	}
	t.Logf("key expiry → session cut, control down: %v", time.Since(exp).Round(time.Millisecond))
	if !strings.Contains(stderr.String(), "Access revoked.") {
		t.Errorf("stderr of the cut session: %q; want \"Access revoked.\"", stderr.String())
	}
	waitGone(t, pid)
	_, banner, err := sshTry(t, laptop, "srv", "root")
	if err == nil || !strings.Contains(banner, "node key of "+self.Name+" expired at") {
		t.Errorf("a login after the expiry, control down: err %v, banner %q; want refused naming the expiry", err, banner)
	}
}
