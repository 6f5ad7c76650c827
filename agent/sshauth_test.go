//go:build linux

package agent

import (
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"tsconnect/controlws"
	"tsconnect/internal/opensshtest"
	"tsconnect/sshd"
	"tsconnect/sshd/sshdtest"
)

// agentSSH is the agent's SSH server (its real authorize) on loopback, deciding under a
// map the test sets.
type agentSSH struct {
	t    *testing.T
	a    *Agent
	srv  *sshd.Server
	addr string

	mu   sync.Mutex
	nm   *controlws.NetworkMap
	logs *sshdtest.Logs
}

func startAgentSSH(t *testing.T, nm *controlws.NetworkMap) *agentSSH {
	t.Helper()
	keys, err := sshd.LoadOrCreateHostKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &agentSSH{t: t, nm: nm, logs: sshdtest.NewLogs(t)}
	logf := e.logs.Logf
	e.a = &Agent{logf: logf, mapSource: e.netMap, mapAsOf: func() (time.Time, bool) { return time.Now(), true }}
	e.srv = &sshd.Server{HostKeys: keys, Authorize: e.a.authorize, Logf: logf}
	e.a.sshSrv = e.srv
	e.addr = sshdtest.Serve(t, e.srv)
	return e
}

func (e *agentSSH) netMap() *controlws.NetworkMap {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.nm
}

// setMap installs nm and runs the agent's reaction to a new map (revocations).
func (e *agentSSH) setMap(nm *controlws.NetworkMap) {
	e.mu.Lock()
	e.nm = nm
	e.mu.Unlock()
	e.a.onNetMap(nm)
}

func (e *agentSSH) logged(substr string) bool { return e.logs.Contains(substr) }

// goSSH logs in as user with the Go client (which, unlike OpenSSH, can send any bytes as
// the user name) and runs command; it returns the output, the auth banners and the error.
func (e *agentSSH) goSSH(user, command string) (out, banners string, err error) {
	var b strings.Builder
	c, err := sshdtest.Dial(e.addr, user, e.srv.HostKeys, func(m string) { b.WriteString(m) })
	if err != nil {
		return "", b.String(), err
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return "", b.String(), err
	}
	defer s.Close()
	o, err := s.CombinedOutput(command)
	return string(o), b.String(), err
}

// openSSH runs the real OpenSSH client as user with command, the host key pinned.
func (e *agentSSH) openSSH(user, command string) (stdout, stderr string, code int) {
	e.t.Helper()
	return sshdtest.NewOpenSSH(e.t, e.addr, e.srv.HostKeys).SSH(user, command)
}

// addUIDZeroUser makes a second uid-0 account (useradd -o -u 0) and removes it when t ends.
func addUIDZeroUser(t *testing.T, name string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("this test creates a uid-0 account with useradd and must run as root (uid is %d)", os.Geteuid())
	}
	exec.Command("userdel", "-f", name).Run() // leftovers of an interrupted run
	if out, err := exec.Command("useradd", "-o", "-u", "0", "-g", "0", "-M", "-d", "/root", "-s", "/bin/sh", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd -o -u 0 %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() {
		// -f: every root process counts as the account's; never -r (its home is /root).
		if out, err := exec.Command("userdel", "-f", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v\n%s", name, err, out)
		}
	})
}

// TestNULInUserNameIsNotRoot is the attack of issue 12 item 1: a peer allowed only
// autogroup:nonroot asks for "root\x00x" (libc would read "root"). It is refused with a
// banner naming the NUL, never runs anything, and a plain non-root login still works.
func TestNULInUserNameIsNotRoot(t *testing.T) {
	opensshtest.AddUser(t, "tscnul1")
	e := startAgentSSH(t, netMapFor(t, sshPolicy("autogroup:nonroot")))

	for _, name := range []string{"root\x00x", "tscnul1\x00", "root\x00", "\x00root"} {
		out, banners, err := e.goSSH(name, "id -u")
		if err == nil {
			t.Fatalf("login as %q succeeded (output %q); it must be refused", name, out)
		}
		if !strings.Contains(banners, "NUL") {
			t.Errorf("login as %q: banner %q does not name the NUL byte", name, banners)
		}
	}
	if e.logged("verdict=accept") || e.logged("session start") {
		t.Fatal("a login with a NUL in its name was accepted")
	}
	// The same peer as a real non-root account: allowed, and not root.
	out, stderr, code := e.openSSH("tscnul1", "id -un; id -u")
	if code != 0 || !strings.HasPrefix(out, "tscnul1\n") || strings.Contains(out, "\n0\n") {
		t.Fatalf("tscnul1 under nonroot: exit %d, output %q, stderr %q; want tscnul1 with its own uid", code, out, stderr)
	}
}

// TestHostileUserNamesRefusedByAgent: every name the validator refuses is refused by the
// agent's SSH server, with a banner saying what is wrong, before any lookup.
func TestHostileUserNamesRefusedByAgent(t *testing.T) {
	e := startAgentSSH(t, netMapFor(t, sshPolicy("autogroup:nonroot")))
	for name, want := range map[string]string{
		"root\tx":                "whitespace",
		"a b":                    "whitespace",
		"../../root":             "'/'",
		"root:x":                 "':'",
		"-oProxyCommand=id":      "starts with '-'",
		"..":                     "not a name",
		"\x1b[31mroot":           "control character",
		"bin\x7f":                "control character",
		strings.Repeat("a", 257): "more than 256",
		"\xff\xfe":               "invalid UTF-8",
		"root\u202e":             "control character",
	} {
		_, banners, err := e.goSSH(name, "id -u")
		if err == nil || !strings.Contains(banners, want) {
			t.Errorf("login as %q: err %v, banner %q; want refused naming %q", name, err, banners, want)
		}
	}
}

// TestSecondUIDZeroAccountIsRoot: an account with uid 0 is root whatever it is called.
// autogroup:nonroot does not reach "tsctoor" (useradd -o -u 0); a rule that lists it by
// name does, and so does one that lists root besides nonroot; the client sees why it was refused.
func TestSecondUIDZeroAccountIsRoot(t *testing.T) {
	addUIDZeroUser(t, "tsctoor")
	opensshtest.AddUser(t, "tscnr2")
	e := startAgentSSH(t, netMapFor(t, sshPolicy("autogroup:nonroot")))

	out, stderr, code := e.openSSH("tsctoor", "id -u")
	if code == 0 || strings.TrimSpace(out) == "0" {
		t.Fatalf("tsctoor (uid 0) under autogroup:nonroot: exit %d, output %q; it must be refused", code, out)
	}
	if !strings.Contains(stderr, "uid 0") {
		t.Errorf("refusal of tsctoor: stderr %q does not say it is a uid-0 account", stderr)
	}
	if out, _, code := e.openSSH("tscnr2", "id -un"); code != 0 || strings.TrimSpace(out) != "tscnr2" {
		t.Fatalf("tscnr2 under nonroot: exit %d, output %q", code, out)
	}

	for _, users := range [][]string{{"autogroup:nonroot", "tsctoor"}, {"autogroup:nonroot", "root"}} {
		e.setMap(netMapFor(t, sshPolicy(users...)))
		out, stderr, code := e.openSSH("tsctoor", "id -u")
		if code != 0 || strings.TrimSpace(out) != "0" {
			t.Errorf("tsctoor under a rule with users %q: exit %d, output %q, stderr %q; want allowed as uid 0", users, code, out, stderr)
		}
	}
}
