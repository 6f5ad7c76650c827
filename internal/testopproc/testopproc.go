// Package testopproc runs the test OpenID Provider (the module in internal/testop, on
// ory/fosite) as a process on loopback, so that tests use a real provider without linking it.
package testopproc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// User is an account of the provider.
type User struct {
	// Subject is the stable "sub" claim; "" means the email.
	Subject       string   `json:"subject,omitempty"`
	Email         string   `json:"email"`
	Password      string   `json:"password"`
	Name          string   `json:"name,omitempty"`
	EmailVerified bool     `json:"email_verified"`
	Groups        []string `json:"groups"` // nil (no groups claim) and empty ([]) stay apart
}

// Client is a registered relying party (a confidential client with a secret).
type Client struct {
	ID           string   `json:"id"`
	Secret       string   `json:"secret"`
	RedirectURIs []string `json:"redirect_uris"`
}

// Options configures the provider. It needs at least one client.
type Options struct {
	Users   []User
	Clients []Client
	// GroupsClaim names the ID token claim that carries a user's groups; "" means "groups".
	// A dotted path ("realm_access.roles") nests the list in objects, as some providers do.
	GroupsClaim string
	// ClaimsInUserinfoOnly leaves email, email_verified, name and the groups out of the ID
	// token: only the userinfo endpoint has them, as with many providers by default.
	ClaimsInUserinfoOnly bool
	// UserinfoSubject, if set, is the "sub" the userinfo endpoint answers for every user (a
	// hostile or broken provider); "" answers the user's own subject.
	UserinfoSubject string
	// RememberSignIns keeps a provider session per browser: later authorization requests
	// without prompt=login or max_age=0 get a code without the form, with auth_time still
	// that of the password sign-in.
	RememberSignIns bool
	// NoAuthTime leaves auth_time out of the ID token.
	NoAuthTime bool
	// IDTokenLifespan is how long ID tokens are valid; 0 means one hour.
	IDTokenLifespan time.Duration
	// Logf, if non-nil, receives the provider's log lines (sign-ins, refused requests).
	Logf func(format string, args ...any)
}

// OP is a running provider process. Its methods fail the test on error.
type OP struct {
	t      testing.TB
	cmd    *exec.Cmd
	issuer string
	admin  string
	token  string
	hc     *http.Client
	logged chan struct{} // closed when the process's standard error is read to its end

	closeOnce sync.Once
}

// Start runs a provider for t; it stops when t ends (or at Close).
func Start(t testing.TB, opts Options) *OP {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	config, err := json.Marshal(map[string]any{"users": nonNil(opts.Users), "clients": nonNil(opts.Clients)})
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--config", "-", "-v=" + fmt.Sprint(opts.Logf != nil)}
	if opts.GroupsClaim != "" {
		args = append(args, "--groups-claim", opts.GroupsClaim)
	}
	if opts.IDTokenLifespan != 0 {
		args = append(args, "--id-token-lifespan", opts.IDTokenLifespan.String())
	}
	if opts.ClaimsInUserinfoOnly {
		args = append(args, "--claims-in-userinfo-only")
	}
	if opts.UserinfoSubject != "" {
		args = append(args, "--userinfo-subject", opts.UserinfoSubject)
	}
	if opts.RememberSignIns {
		args = append(args, "--remember-sign-ins")
	}
	if opts.NoAuthTime {
		args = append(args, "--no-auth-time")
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdin = bytes.NewReader(config)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting testop: %v", err)
	}
	op := &OP{t: t, cmd: cmd, hc: &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}, logged: make(chan struct{})}
	var errLog strings.Builder
	var errMu sync.Mutex
	go func() {
		defer close(op.logged)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			errMu.Lock()
			errLog.WriteString(sc.Text() + "\n")
			errMu.Unlock()
			if opts.Logf != nil {
				opts.Logf("%s", sc.Text())
			}
		}
	}()
	t.Cleanup(op.Close)
	if err := op.readBanner(stdout); err != nil {
		op.Close()
		errMu.Lock()
		defer errMu.Unlock()
		t.Fatalf("testop: %v\n%s", err, errLog.String())
	}
	go io.Copy(io.Discard, stdout) // nothing more is printed; keep the pipe drained
	return op
}

// readBanner reads the issuer line and the admin line that testop prints once it serves.
func (op *OP) readBanner(stdout io.Reader) error {
	type banner struct {
		lines []string
		err   error
	}
	got := make(chan banner, 1)
	go func() {
		var b banner
		r := bufio.NewReader(stdout)
		for len(b.lines) < 2 && b.err == nil {
			var line string
			line, b.err = r.ReadString('\n')
			if b.err == nil {
				b.lines = append(b.lines, strings.TrimSpace(line))
			}
		}
		got <- b
	}()
	var b banner
	select {
	case b = <-got:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("printed no issuer and admin lines in 30 s")
	}
	if b.err != nil {
		return fmt.Errorf("exited before it served: %v", b.err)
	}
	op.issuer = b.lines[0]
	f := strings.Fields(b.lines[1])
	if !strings.HasPrefix(op.issuer, "http://127.0.0.1:") || len(f) != 3 || f[0] != "admin" {
		return fmt.Errorf("printed %q, want the issuer URL and \"admin URL TOKEN\"", b.lines)
	}
	op.admin, op.token = f[1], f[2]
	return nil
}

// nonNil is s, or an empty list for nil (the config's lists are never null).
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Issuer is the provider's issuer URL (http://127.0.0.1:PORT), the base of discovery.
func (op *OP) Issuer() string { return op.issuer }

// Close stops the process and waits until its output is read. It may be called more than once.
func (op *OP) Close() {
	op.closeOnce.Do(func() {
		op.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() {
			<-op.logged
			op.cmd.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			op.cmd.Process.Kill()
			<-done
		}
		op.hc.CloseIdleConnections()
	})
}

// AddUser adds or replaces (by email) an account of the running provider.
func (op *OP) AddUser(u User) {
	op.t.Helper()
	op.call("POST", "/users", u, nil)
}

// AddClient registers another relying party. Its redirect URIs must be exact.
func (op *OP) AddClient(c Client) {
	op.t.Helper()
	op.call("POST", "/clients", c, nil)
}

// Logins is how many sign-ins the login form has accepted.
func (op *OP) Logins() int {
	op.t.Helper()
	var r struct{ Logins int }
	op.call("GET", "/logins", nil, &r)
	return r.Logins
}

// BackdateSignIns moves the time of every remembered sign-in (Options.RememberSignIns) d
// into the past, as if the browsers had signed in at the provider that long ago.
func (op *OP) BackdateSignIns(d time.Duration) {
	op.t.Helper()
	op.call("POST", "/backdate", map[string]string{"by": d.String()}, nil)
}

// call sends one admin request with body (JSON, if non-nil) and decodes the answer into out
// (if non-nil); any failure fails the test.
func (op *OP) call(method, path string, body, out any) {
	op.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			op.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, op.admin+path, rd)
	if err != nil {
		op.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+op.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := op.hc.Do(req)
	if err != nil {
		op.t.Fatalf("testop admin %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		op.t.Fatalf("testop admin %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			op.t.Fatalf("testop admin %s %s: answer %q: %v", method, path, data, err)
		}
	}
}
