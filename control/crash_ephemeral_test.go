package control

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"tsconnect/control/store"
	"tsconnect/controlws"
	"tsconnect/internal/eventually"
	"tsconnect/internal/leakcheck"
	"tsconnect/internal/testclock"
)

// TestEphemeralGraceAfterCrash: control is SIGKILLed while an ephemeral node holds its map
// stream (another one had left before). Started again, it gives the one that was online the
// full grace from start-up, even when more than a grace passed since the last sweep refreshed
// it, sweeps the one that had left, and sweeps the revived one too once a grace has passed
// without it coming back.
func TestEphemeralGraceAfterCrash(t *testing.T) {
	if os.Getenv("CONTROL_CRASH_CHILD") != "" {
		t.Skip("in the child")
	}
	leakcheck.Check(t)
	dir := t.TempDir()
	crashChild(t, "TestEphemeralGraceAfterCrashChild", "CONTROL_CRASH_CHILD", dir)

	const grace = MaxEphemeralGrace // no sweep but the one at start-up runs during the test
	clock := new(testclock.Clock)
	clock.Advance(grace + grace/5) // down long enough that the last refresh is over a grace ago
	cfg := Config{StateDir: dir, ServerURL: "http://127.0.0.1:1", EphemeralGrace: grace, Now: clock.Now, Logf: t.Logf}
	names := func(s *Server) string {
		ns, err := s.Nodes(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, n := range ns {
			out = append(out, n.Name)
		}
		return strings.Join(out, " ")
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	eventually.True(t, "the node that had left swept at start-up", func() bool { return !strings.Contains(names(s), "left") })
	if got := names(s); got != "online" {
		t.Fatalf("nodes after the crash: %q, want only the one online at the crash", got)
	}
	s.Close()

	clock.Advance(grace + grace/5) // it never came back
	s, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	eventually.True(t, "the revived node swept a grace after start-up", func() bool { return names(s) == "" })
}

// TestEphemeralGraceAfterCrashChild is the child of TestEphemeralGraceAfterCrash: one
// ephemeral node online, one that left, a sweep that refreshed the online one; then "done"
// and it waits to be killed.
func TestEphemeralGraceAfterCrashChild(t *testing.T) {
	dir := os.Getenv("CONTROL_CRASH_CHILD")
	if dir == "" {
		t.Skip("only run as TestEphemeralGraceAfterCrash's child")
	}
	e := newEnv(t, func(c *Config) { c.StateDir, c.EphemeralGrace = dir, 200*time.Millisecond })
	u := e.user("cora@example.com")
	secret := e.authKey(AuthKeyOptions{User: u.ID, Ephemeral: true, Reusable: true})
	left, nl := e.mustRegister(secret, "left")
	on, _ := e.mustRegister(secret, "online")
	wl := left.watch(t)
	w := on.watch(t)
	w.waitFor(t, "map", func(nm *controlws.NetworkMap) bool { return hasPeer(nm, nl.ID) })
	wl.cancel()
	left.c.Close()
	eventually.True(t, "the left node offline", func() bool {
		for _, n := range e.nodes() {
			if n.Name == "left" && n.Online {
				return false
			}
		}
		return true
	})
	// Wait for a sweep that refreshed the online node after the other one left.
	after := time.Now()
	eventually.True(t, "a refresh", func() bool {
		var v string
		e.s.st.Read(t.Context(), func(tx store.Tx) error { v, _ = tx.Setting(settingEphemeralRefresh); return nil })
		n, _ := strconv.ParseInt(v, 10, 64)
		return time.Unix(0, n).After(after)
	})
	os.Stdout.WriteString("done\n")
	select {}
}

// TestEphemeralGraceAfterCleanStop: control stopped cleanly while an ephemeral node holds its
// map stream, and down for longer than the grace: started again, it keeps the node a grace
// from start-up (its downtime does not count), and sweeps it once a grace has passed without
// it coming back.
func TestEphemeralGraceAfterCleanStop(t *testing.T) {
	const grace = MaxEphemeralGrace
	e := newEnv(t, func(c *Config) { c.EphemeralGrace = grace })
	u := e.user("dora@example.com")
	on, n := e.mustRegister(e.authKey(AuthKeyOptions{User: u.ID, Ephemeral: true}), "online")
	w := on.watch(t)
	w.waitFor(t, "map", func(nm *controlws.NetworkMap) bool { return nm.Self.ID == n.ID })
	e.s.Close()
	e.clock.Advance(grace + grace/5) // a long deploy
	e.start()
	has := func() bool {
		for _, x := range e.nodes() {
			if x.ID == n.ID {
				return true
			}
		}
		return false
	}
	time.Sleep(100 * time.Millisecond) // the start-up sweep has run by now
	if !has() {
		t.Fatal("the node online at the clean stop was swept at start-up: control's downtime counted against its grace")
	}
	e.s.Close()
	e.clock.Advance(grace + grace/5) // it never came back
	e.start()
	eventually.True(t, "the node swept a grace after it was revived", func() bool { return !has() })
}
