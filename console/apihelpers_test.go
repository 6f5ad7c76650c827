package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"tsconnect/control"
	"tsconnect/control/adminclient"
)

// Helpers of the API tests that reach the API over the admin socket and with API tokens
// (the sign-in cookie's client is in helpers_test.go).

// socket serves the API on the env's real admin socket (DIR/admin.sock) and returns a
// client of it; both end with the test.
func (e *env) socket() *adminclient.Client {
	e.t.Helper()
	ln, err := control.ListenAdmin(e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	served := make(chan error, 1)
	con := e.con
	go func() { served <- con.ServeAdmin(ln) }()
	c := adminclient.New(e.dir)
	e.t.Cleanup(func() {
		c.Close()
		ln.Close()
		if err := <-served; err != nil {
			e.t.Errorf("ServeAdmin: %v", err)
		}
	})
	return c
}

func wantAPIError(t *testing.T, err error, status int, code string) *adminclient.Error {
	t.Helper()
	var ae *adminclient.Error
	if !errors.As(err, &ae) || ae.Status != status || ae.Message == "" || (code != "" && ae.Code != code) {
		t.Fatalf("got %v, want an admin API error with status %d code %q", err, status, code)
	}
	return ae
}

// socketDo sends one request on the env's admin socket (socket() must be serving) and reads
// the answer as client.do does; hdr are header pairs.
func (e *env) socketDo(method, path string, in any, hdr ...string) answer {
	e.t.Helper()
	sock := filepath.Join(e.dir, control.AdminSocket)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	defer hc.CloseIdleConnections()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://control"+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	c := &client{e: e, hc: hc}
	return decoded(e.t, c.send(req, hdr...))
}

// bearer sends one request with an API token (no cookie, no Origin, no CSRF token).
func (e *env) bearer(secret, method, path string, in any, hdr ...string) answer {
	e.t.Helper()
	c := &client{e: e, hc: &http.Client{}}
	return c.do(method, path, in, append([]string{"Authorization", "Bearer " + secret}, hdr...)...)
}

// decoded fills a.body from a JSON answer.
func decoded(t *testing.T, a answer) answer {
	t.Helper()
	if len(a.raw) > 0 && strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(a.raw, &a.body); err != nil {
			t.Fatalf("bad JSON %q: %v", a.raw, err)
		}
	}
	return a
}
