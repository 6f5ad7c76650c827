//go:build linux

package sshd

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestAuthRequestExtend: Authorize may extend the handshake up to MaxHold, no further and
// not by nothing; once Authorize has returned, its request extends nothing any more.
func TestAuthRequestExtend(t *testing.T) {
	var errs []error
	var kept AuthRequest
	e := newEnv(t, false, func(s *Server) {
		inner := s.Authorize
		s.Authorize = func(ctx context.Context, req AuthRequest) (*Login, error) {
			errs = []error{req.Extend(0), req.Extend(MaxHold + time.Second), req.Extend(MaxHold)}
			kept = req
			return inner(ctx, req)
		}
	})
	c := e.mustDial(t)
	s, err := c.NewSession() // the server serves channels: its handshake is over
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	for i, want := range []string{"out of range", "out of range", ""} {
		if err := errs[i]; (want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("extension %d: %v; want %q", i, err, want)
		}
	}
	if err := kept.Extend(time.Minute); err == nil || !strings.Contains(err.Error(), "handshake already ended") {
		t.Errorf("Extend after the login was decided: %v; want an error saying the handshake ended", err)
	}
}
