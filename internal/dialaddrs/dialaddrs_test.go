//go:build !js

package dialaddrs

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"tsconnect/internal/httpget"
	"tsconnect/internal/testdns"
)

// serveOn serves "I am <ip>" on ip:port (port 0: any), until t ends or it is killed.
func serveOn(t *testing.T, ip string, port int) *httptest.Server {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, fmt.Sprint(port)))
	if err != nil {
		t.Skipf("cannot listen on %s (Linux loopback answers all of 127/8): %v", ip, err)
	}
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "I am %s", ip)
	}))
	s.Listener.Close()
	s.Listener = ln
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// TestNameOfSeveralAddresses: a name resolving to two servers on one port reaches the first
// the resolver answers; with it killed (its port closed, as after kill -9) the next dial
// reaches the other at once; a name the resolver does not know fails naming it.
func TestNameOfSeveralAddresses(t *testing.T) {
	first := serveOn(t, "127.0.0.2", 0)
	port := first.Listener.Addr().(*net.TCPAddr).Port
	serveOn(t, "127.0.0.1", port)
	dns := testdns.Start(t, map[string][]netip.Addr{
		"control.test": {netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.1")},
	})
	d := &Dialer{Resolver: dns.Resolver()}
	url := fmt.Sprintf("http://control.test:%d/", port)
	get := func() (string, time.Duration, error) {
		c := d.HTTPClient()
		defer c.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		t0 := time.Now()
		b, err := httpget.GetWith(ctx, c, url)
		return string(b), time.Since(t0), err
	}
	if got, _, err := get(); err != nil || got != "I am 127.0.0.2" {
		t.Fatalf("GET %s: %q, %v; want the first address's server", url, got, err)
	}
	first.CloseClientConnections()
	first.Close()
	got, took, err := get()
	if err != nil || got != "I am 127.0.0.1" {
		t.Fatalf("GET %s with the first address's server killed: %q, %v; want the second's", url, got, err)
	}
	if took > AddrTimeout {
		t.Errorf("reaching the second address took %v; want under %v (a refused connection gives way at once)", took, AddrTimeout)
	}
	if _, err := d.DialContext(context.Background(), "tcp", fmt.Sprintf("nowhere.test:%d", port)); err == nil || !strings.Contains(err.Error(), "nowhere.test") {
		t.Errorf("dial of a name the resolver does not know: %v; want an error naming it", err)
	}
}

// TestNoAddressAnswers: every address refusing, the error says none answered.
func TestNoAddressAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now
	dns := testdns.Start(t, map[string][]netip.Addr{"gone.test": {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.3")}})
	d := &Dialer{Resolver: dns.Resolver()}
	_, err = d.DialContext(context.Background(), "tcp", fmt.Sprintf("gone.test:%d", port))
	if err == nil || !strings.Contains(err.Error(), "no address of gone.test answered") || !strings.Contains(err.Error(), "127.0.0.3") {
		t.Fatalf("dial with every address refusing: %v; want an error saying none answered, naming each", err)
	}
}
