package controltest

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"tsconnect/control"
	"tsconnect/controlws"
	"tsconnect/internal/leakcheck"
	"tsconnect/internal/testclock"
)

func TestRestartKeepsStateAndURL(t *testing.T) {
	leakcheck.Check(t)
	var clock testclock.Clock
	s := New(t, &Options{Config: func(c *control.Config) { c.Now = clock.Now }})
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Fatalf("URL %q is not on loopback", s.URL)
	}
	u := s.User("ada@example.com", control.RoleMember)
	_, _, r, err := s.Register(s.AuthKey(control.AuthKeyOptions{User: u.ID}), controlws.Hostinfo{Hostname: "one", OS: "linux"})
	if err != nil {
		t.Fatal(err)
	}
	expiring := s.AuthKey(control.AuthKeyOptions{User: u.ID, Expiry: time.Minute})
	first, url := s.Control, s.URL
	s.Restart()
	if s.Control == first || s.URL != url {
		t.Fatalf("after Restart: same server %v, URL %q (was %q); want a new server on the same URL", s.Control == first, s.URL, url)
	}
	nodes, err := s.Control.Nodes(context.Background())
	if err != nil || len(nodes) != 1 || nodes[0].ID != r.Node.ID {
		t.Fatalf("nodes after Restart: %+v, %v; want the one registered before", nodes, err)
	}
	clock.Advance(2 * time.Minute) // the restarted server runs on the same clock
	_, _, _, err = s.Register(expiring, controlws.Hostinfo{Hostname: "two", OS: "linux"})
	var ce *controlws.Error
	if !errors.As(err, &ce) || ce.Code != controlws.CodeExpiredKey {
		t.Fatalf("register with a key the clock expired: %v, want %s", err, controlws.CodeExpiredKey)
	}
}

func TestFrontAndClose(t *testing.T) {
	leakcheck.Check(t)
	var fronts, closed int
	s := New(t, &Options{Front: func(srv *control.Server) (http.Handler, func()) {
		fronts++
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/front" {
				w.Write([]byte("front"))
				return
			}
			srv.Handler().ServeHTTP(w, r)
		}), func() { closed++ }
	}})
	get := func() (string, error) {
		resp, err := http.Get(s.URL + "/front")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b := make([]byte, 16)
		n, _ := resp.Body.Read(b)
		return string(b[:n]), nil
	}
	if got, err := get(); got != "front" || err != nil {
		t.Fatalf("GET /front = %q, %v; want the front's answer", got, err)
	}
	s.Restart()
	if fronts != 2 || closed != 1 {
		t.Errorf("after Restart: %d fronts built, %d closed; want 2 and 1", fronts, closed)
	}
	s.Close()
	if closed != 2 {
		t.Errorf("after Close: %d fronts closed, want 2", closed)
	}
	if _, err := get(); err == nil {
		t.Error("the listener still answers after Close")
	}
}
