//go:build linux

package sshd

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// holdEnv is a server whose Authorize holds every login (as check mode does) until its
// context ends, and reports the context's cause.
func holdEnv(t *testing.T, overPipes bool) (e *testEnv, causes chan error) {
	causes = make(chan error, 1)
	e = newEnv(t, overPipes, func(s *Server) {
		s.Authorize = func(ctx context.Context, req AuthRequest) (*Login, error) {
			if err := req.Extend(10 * time.Minute); err != nil {
				return nil, err
			}
			if err := req.Banner("held: visit https://control.example/check/1"); err != nil {
				return nil, err
			}
			<-ctx.Done()
			causes <- context.Cause(ctx)
			return nil, errors.New("tsconnect: the hold ended")
		}
	})
	return e, causes
}

// startHeld connects to e and returns once the client has the hold's banner; the returned
// channel is closed when the client's handshake has ended.
func startHeld(t *testing.T, e *testEnv) (net.Conn, <-chan struct{}) {
	t.Helper()
	var nc net.Conn
	var err error
	if e.ln != nil {
		nc, err = e.ln.dial(netip.MustParseAddrPort("100.64.0.5:51234"))
	} else {
		nc, err = net.Dial("tcp", e.addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	banner := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, _, _, err := ssh.NewClientConn(nc, "server", &ssh.ClientConfig{
			User: e.me.Username, HostKeyCallback: e.hostKeyCallback(),
			BannerCallback: func(string) error { banner <- struct{}{}; return nil },
		})
		if err == nil {
			c.Close()
		}
	}()
	t.Cleanup(func() { nc.Close(); <-done })
	select {
	case <-banner:
	case <-done:
		t.Fatal("handshake ended before the hold's banner")
	case <-time.After(30 * time.Second):
		t.Fatal("no banner within 30 s")
	}
	return nc, done
}

func waitCause(t *testing.T, causes chan error) error {
	t.Helper()
	select {
	case err := <-causes:
		return err
	case <-time.After(30 * time.Second): // the hold itself lasts 10 minutes
		t.Fatal("Authorize's context did not end within 30 s")
	}
	return nil
}

// TestHangUpEndsHold: a client that hangs up while Authorize holds its login ends
// Authorize's context at once (not at the handshake's deadline), with ErrClientGone as
// the cause, over TCP and over socket pairs as the netstack gives.
func TestHangUpEndsHold(t *testing.T) {
	for _, tc := range []struct {
		name      string
		overPipes bool
	}{{"tcp", false}, {"pipe", true}} {
		t.Run(tc.name, func(t *testing.T) {
			e, causes := holdEnv(t, tc.overPipes)
			nc, done := startHeld(t, e)
			nc.Close()
			if cause := waitCause(t, causes); !errors.Is(cause, ErrClientGone) {
				t.Fatalf("cause after the client hung up: %v; want ErrClientGone", cause)
			}
			<-done
		})
	}
}

// TestServerCloseEndsHold: closing the server ends a hold too, but not as a hang-up.
func TestServerCloseEndsHold(t *testing.T) {
	e, causes := holdEnv(t, false)
	startHeld(t, e)
	e.srv.Close()
	if cause := waitCause(t, causes); cause == nil || errors.Is(cause, ErrClientGone) {
		t.Fatalf("cause after the server closed: %v; want a cause other than ErrClientGone", cause)
	}
}
