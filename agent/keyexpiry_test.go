package agent

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestAuthorizeExpiredPeer: a login from a peer whose key expired by the agent's clock is
// refused naming the expiry, whatever the rules say and with no word from control; the
// same peer before its expiry gets in.
func TestAuthorizeExpiredPeer(t *testing.T) {
	ctx := context.Background()
	nm := netMapFor(t, sshPolicy("root"))
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	nm.Peers[0].KeyExpiry = exp
	f := newFakeAgent(t, nm)
	f.now = func() time.Time { return exp.Add(-time.Second) }
	if _, err := f.authorize(ctx, fromLaptop("root")); err != nil {
		t.Fatalf("before the expiry: %v", err)
	}
	f.now = func() time.Time { return exp }
	_, err := f.authorize(ctx, fromLaptop("root"))
	if err == nil || !strings.Contains(err.Error(), "node key of laptop expired at 2030-01-02T03:04:05Z") {
		t.Fatalf("at the expiry: %v; want refused naming the expiry", err)
	}
}

// TestKeyWarning: the agent warns within KeyExpiryWarning of its own key's expiry and
// after it, and not before, nor when the key never expires.
func TestKeyWarning(t *testing.T) {
	nm := netMapFor(t, sshPolicy("root"))
	f := newFakeAgent(t, nm)
	if w := f.KeyWarning(); w != "" {
		t.Errorf("no expiry: warning %q", w)
	}
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	nm.Self.KeyExpiry = exp
	for _, tc := range []struct {
		before time.Duration
		want   string
	}{
		{KeyExpiryWarning + time.Second, ""},
		{KeyExpiryWarning, "this node's key expires in 168h0m0s (at 2030-01-02T03:04:05Z): re-authenticate before then (tsconnect login)"},
		{0, "this node's key expired at 2030-01-02T03:04:05Z: peers refuse it until it re-authenticates (tsconnect login)"},
	} {
		f.now = func() time.Time { return exp.Add(-tc.before) }
		if w := f.KeyWarning(); w != tc.want {
			t.Errorf("%v before the expiry: warning %q, want %q", tc.before, w, tc.want)
		}
	}
}
