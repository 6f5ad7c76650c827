//go:build linux

package agent

import (
	"strings"
	"sync"
	"testing"
	"time"

	"tsconnect/internal/opensshtest"
)

// TestStaleMapPastMaxMapAgeRefusesLogins: with --max-map-age, a map older than it (control
// unreachable) refuses new logins with a banner saying why; without it, the last map keeps
// deciding (the stated choice), and the agent warns either way. A fresh map lets logins in again.
func TestStaleMapPastMaxMapAgeRefusesLogins(t *testing.T) {
	opensshtest.AddUser(t, "tscage1")
	e := startAgentSSH(t, netMapFor(t, sshPolicy("autogroup:nonroot")))
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	lost := now // the map stream was lost at the start
	e.a.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e.a.mapAsOf = func() (time.Time, bool) { mu.Lock(); defer mu.Unlock(); return lost, true }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	e.a.cfg.MaxMapAge = time.Hour

	advance(59 * time.Minute)
	if out, stderr, code := e.openSSH("tscage1", "id -un"); code != 0 || strings.TrimSpace(out) != "tscage1" {
		t.Fatalf("map 59m old, max 1h: exit %d, output %q, stderr %q; want logged in", code, out, stderr)
	}
	if w := e.a.staleWarning(); !strings.Contains(w, "WARNING: no fresh network map from control for 59m0s") {
		t.Errorf("stale warning = %q", w)
	}
	advance(2 * time.Minute)
	out, stderr, code := e.openSSH("tscage1", "id -un")
	if code == 0 || strings.Contains(out, "tscage1") {
		t.Fatalf("map 61m old, max 1h: exit %d, output %q; want refused", code, out)
	}
	if !strings.Contains(stderr, "no fresh network map from control for 1h1m0s, more than its --max-map-age 1h0m0s") {
		t.Errorf("refusal banner: %q; want it to name the map's age and --max-map-age", stderr)
	}
	if w := e.a.staleWarning(); !strings.Contains(w, "so new SSH logins are refused") {
		t.Errorf("stale warning past the max = %q", w)
	}

	// Off (the default): the last map keeps deciding, and the warning says so.
	e.a.cfg.MaxMapAge = 0
	if out, _, code := e.openSSH("tscage1", "id -un"); code != 0 || strings.TrimSpace(out) != "tscage1" {
		t.Fatalf("no --max-map-age, map 61m old: exit %d, output %q; want logged in", code, out)
	}
	if w := e.a.staleWarning(); !strings.Contains(w, "still decided under it") {
		t.Errorf("stale warning without a max = %q", w)
	}

	// Control back: fresh again, no warning, logins in.
	e.a.cfg.MaxMapAge = time.Hour
	mu.Lock()
	lost = now
	mu.Unlock()
	if w := e.a.staleWarning(); w != "" {
		t.Errorf("fresh map: warning %q", w)
	}
	if out, _, code := e.openSSH("tscage1", "id -un"); code != 0 || strings.TrimSpace(out) != "tscage1" {
		t.Fatalf("fresh map: exit %d, output %q; want logged in", code, out)
	}
}
