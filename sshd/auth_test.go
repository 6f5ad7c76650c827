//go:build linux

package sshd

import (
	"context"
	"net"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"tsconnect/internal/leakcheck"
	"tsconnect/sshd/sshdtest"
)

func TestLoginAcceptedAndLogged(t *testing.T) {
	e := newEnv(t, false)
	e.mustDial(t)
	want := `verdict=accept remote=127.0.0.1:`
	if !e.logged(want) || !e.logged(`rule="ssh[0]"`) || !e.logged(`local_user="`+e.me.Username+`"`) {
		t.Errorf("no accept line with remote, rule and local user in %q", e.logs.Lines())
	}
}

func TestRefusalShowsBanner(t *testing.T) {
	e := newEnv(t, false)
	var banner string
	_, err := e.dial(t, "bob", &banner)
	if err == nil {
		t.Fatal("login as bob succeeded")
	}
	if !strings.Contains(banner, `no SSH rule lets alice@example.com log in as "bob"`) {
		t.Errorf("banner %q does not explain the refusal", banner)
	}
	if !strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("error %v, want an authentication failure", err)
	}
	if !e.logged(`verdict=refuse`) || !e.logged(`user="bob"`) || !e.logged(`source="alice@example.com on laptop (127.0.0.1)"`) {
		t.Errorf("no refuse line naming source and user in %q", e.logs.Lines())
	}
}

// A client that offers keys is not authorized by them: the identity decides.
func TestKeysDoNotAuthorize(t *testing.T) {
	e := newEnv(t, false)
	signer := e.srv.HostKeys[0] // any key will do
	cfg := &ssh.ClientConfig{
		User:            "bob",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer), ssh.Password("hunter2")},
		HostKeyCallback: e.hostKeyCallback(),
	}
	c, err := ssh.Dial("tcp", e.addr, cfg)
	if err == nil {
		c.Close()
		t.Fatal("refused user logged in with a key")
	}
	// The allowed user with keys on offer still gets in (none is tried first).
	cfg.User = e.me.Username
	c, err = ssh.Dial("tcp", e.addr, cfg)
	if err != nil {
		t.Fatalf("allowed user offering keys: %v", err)
	}
	c.Close()
}

func TestNilAuthorizeRefuses(t *testing.T) {
	leakcheck.Check(t)
	keys, err := LoadOrCreateHostKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{HostKeys: keys}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- srv.Serve(ln) }()
	defer func() { srv.Close(); <-done }()
	var banner string
	_, err = ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{
		User:            "root",
		HostKeyCallback: sshdtest.PinKeys(keys),
		BannerCallback:  func(m string) error { banner += m; return nil },
	})
	if err == nil || !strings.Contains(banner, "not configured") {
		t.Errorf("login with nil Authorize: err %v, banner %q; want refusal with a banner", err, banner)
	}
}

func TestBannerWhileDeciding(t *testing.T) {
	e := newEnv(t, false, func(s *Server) {
		inner := s.Authorize
		s.Authorize = func(ctx context.Context, req AuthRequest) (*Login, error) {
			if err := req.Banner("Visit https://control.example/check to continue"); err != nil {
				return nil, err
			}
			return inner(ctx, req)
		}
	})
	var banner string
	if _, err := e.dial(t, e.me.Username, &banner); err != nil {
		t.Fatal(err)
	}
	if banner != "Visit https://control.example/check to continue\n" {
		t.Errorf("banner %q", banner)
	}
}
