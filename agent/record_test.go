//go:build linux

package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os/user"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"tsconnect/control"
	"tsconnect/control/controltest"
	"tsconnect/internal/eventually"
	"tsconnect/internal/metrics/metricstest"
	"tsconnect/internal/nodetest"
	"tsconnect/internal/syncbuf"
	"tsconnect/node"
	"tsconnect/recorder"
	"tsconnect/recorder/recnode"
)

// recordPolicy lets alice log in to tag:server as the test's user, recorded to rec1 then rec2.
func recordPolicy(local string, enforce, input bool) string {
	return fmt.Sprintf(`{
	"tagOwners": {"tag:rec1": ["alice@example.com"], "tag:rec2": ["alice@example.com"], "tag:server": ["alice@example.com"]},
	"acls": [
		{"action": "accept", "src": ["tag:server"], "dst": ["tag:rec1:8410", "tag:rec2:8410"]},
		{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:server:22"]},
	],
	"ssh": [{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:server"], "users": [%q],
		"recorder": ["tag:rec1", "tag:rec2"], "enforceRecorder": %t, "recordInput": %t}],
}`, local, enforce, input)
}

// recordNet is a control, two recorder nodes, an SSH-serving agent (web) and alice's laptop.
type recordNet struct {
	t      *testing.T
	cs     *controltest.Server
	local  string
	rec    [2]*recnode.Recorder
	web    *Agent
	laptop *node.Node
}

func startRecordNet(t *testing.T) *recordNet {
	cs := controltest.New(t, nil)
	alice := cs.User("alice@example.com", control.RoleAdmin)
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	rn := &recordNet{t: t, cs: cs, local: me.Username}
	rn.setPolicy(true)
	key := func(o control.AuthKeyOptions) string {
		k, _, err := cs.Control.CreateAuthKey(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range rn.rec {
		name := fmt.Sprintf("rec%d", i+1)
		r, err := recnode.Start(ctx, recnode.Config{ControlURL: cs.URL, AuthKey: key(control.AuthKeyOptions{Tags: []string{"tag:" + name}}),
			Hostname: name, StateDir: t.TempDir(), Store: recorder.Options{MinFree: -1}, Logf: prefixLogf(t, name)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		rn.rec[i] = r
	}
	rn.web, err = New(Config{ControlURL: cs.URL, AuthKey: key(control.AuthKeyOptions{Tags: []string{"tag:server"}}), Hostname: "web",
		StateDir: t.TempDir(), SSH: true, Logf: prefixLogf(t, "web")})
	if err != nil {
		t.Fatal(err)
	}
	if err := rn.web.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rn.web.Close() })
	rn.laptop = nodetest.Join(t, cs.URL, key(control.AuthKeyOptions{User: alice.ID, Ephemeral: true}), "laptop")
	eventually.True(t, "web's rule naming both recorders, and laptop in its map", func() bool {
		nm := rn.web.Node().NetMap()
		if nm == nil || len(nm.SSHRules) != 1 || len(nm.SSHRules[0].Recorders) != 2 {
			return false
		}
		_, ok := nm.PeerByName("laptop")
		return ok
	})
	return rn
}

func prefixLogf(t *testing.T, p string) func(string, ...any) {
	return func(f string, a ...any) { t.Logf(p+": "+f, a...) }
}

// setPolicy installs the policy, enforced or not, and waits for web to have it.
func (rn *recordNet) setPolicy(enforce bool) { rn.t.Helper(); rn.install(enforce, false) }

// install installs the policy with enforceRecorder and recordInput as given, and waits for
// web to have it.
func (rn *recordNet) install(enforce, input bool) {
	rn.t.Helper()
	if _, err := rn.cs.Control.SetPolicy(context.Background(), []byte(recordPolicy(rn.local, enforce, input)), "test"); err != nil {
		rn.t.Fatal(err)
	}
	if rn.web == nil {
		return
	}
	eventually.True(rn.t, fmt.Sprintf("web's rule with enforceRecorder %t, recordInput %t", enforce, input), func() bool {
		nm := rn.web.Node().NetMap()
		return nm != nil && len(nm.SSHRules) == 1 && nm.SSHRules[0].EnforceRecorder == enforce && nm.SSHRules[0].RecordInput == input
	})
}

// ssh logs in from laptop to web, pinning web's host keys.
func (rn *recordNet) ssh() *ssh.Client {
	rn.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nm := rn.laptop.NetMap()
	p, ok := nm.PeerByName("web")
	if !ok {
		rn.t.Fatal("web is not in laptop's map")
	}
	nc, err := rn.laptop.Dial(ctx, "tcp", net.JoinHostPort(p.Addresses[0].Addr().String(), "22"))
	if err != nil {
		rn.t.Fatal(err)
	}
	keys := rn.web.hostKeys
	c, chans, reqs, err := ssh.NewClientConn(nc, "web:22", &ssh.ClientConfig{User: rn.local, Timeout: 20 * time.Second,
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			for _, s := range keys {
				if bytes.Equal(s.PublicKey().Marshal(), k.Marshal()) {
					return nil
				}
			}
			return errors.New("not web's host key")
		}})
	if err != nil {
		rn.t.Fatal(err)
	}
	cl := ssh.NewClient(c, chans, reqs)
	rn.t.Cleanup(func() { cl.Close() })
	return cl
}

// failures is the agent's count of recording failures at stage, as its metrics show it.
func (rn *recordNet) failures(stage string) float64 {
	return metricstest.Of(rn.t, rn.web.Collector())[fmt.Sprintf("tsconnect_agent_ssh_recording_failures_total{stage=%q}", stage)]
}

// cast is a stored recording: its header and events.
type cast struct {
	meta   recorder.Meta
	header map[string]any
	events [][3]any
}

// output is the text of the recording's "o" events.
func (c cast) output() string { return c.text("o") }

// text is the data of the recording's events of kind, joined.
func (c cast) text(kind string) string {
	var b strings.Builder
	for _, e := range c.events {
		if e[1] == kind {
			b.WriteString(e[2].(string))
		}
	}
	return b.String()
}

func (c cast) has(kind, data string) bool {
	for _, e := range c.events {
		if e[1] == kind && e[2] == data {
			return true
		}
	}
	return false
}

// only waits for r to hold exactly n recordings, the one not among seen no longer in
// progress, and reads it.
func only(t *testing.T, r *recnode.Recorder, n int, seen ...string) cast {
	t.Helper()
	var m recorder.Meta
	eventually.True(t, fmt.Sprintf("%d recordings, the newest finished", n), func() bool {
		l := r.Store().List()
		if len(l) != n || n == 0 {
			return len(l) == n && n == 0
		}
		for _, e := range l {
			if !slices.Contains(seen, e.ID) {
				m = e
			}
		}
		return m.ID != "" && m.State != recorder.Recording
	})
	if n == 0 {
		return cast{}
	}
	f, _, err := r.Store().OpenCast(m.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := cast{meta: m}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, recorder.MaxEventLine)
	for first := true; sc.Scan(); first = false {
		var err error
		if first {
			err = json.Unmarshal(sc.Bytes(), &c.header)
		} else {
			var e [3]any
			err = json.Unmarshal(sc.Bytes(), &e)
			c.events = append(c.events, e)
		}
		if err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
	}
	return c
}

func sortedLines(s string) []string {
	l := strings.Split(s, "\n")
	slices.Sort(l)
	return l
}

// shell is an interactive PTY session whose output the test reads as the user sees it.
type shell struct {
	t     *testing.T
	s     *ssh.Session
	stdin io.WriteCloser
	out   syncbuf.Buffer // what the user saw
	done  chan error
}

// windowChangeMsg is RFC 4254's "window-change" request.
type windowChangeMsg struct{ Cols, Rows, WPx, HPx uint32 }

func (sh *shell) seen() string { return sh.out.String() }

func startShell(t *testing.T, cl *ssh.Client, cols, rows int) *shell {
	t.Helper()
	s, err := cl.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	sh := &shell{t: t, s: s, done: make(chan error, 1)}
	s.Stdout, s.Stderr = &sh.out, &sh.out
	if sh.stdin, err = s.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := s.RequestPty("xterm", rows, cols, ssh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	go func() { sh.done <- s.Wait() }()
	return sh
}

// run types line and waits until want shows and the shell is back at its prompt, so the
// next line or window change reaches a shell that reads (typed while bash was still
// between its command and the next prompt, a line was lost once under load).
func (sh *shell) run(line, want string) {
	sh.t.Helper()
	io.WriteString(sh.stdin, line+"\n")
	defer func() {
		if sh.t.Failed() {
			sh.t.Logf("the shell showed %q", sh.seen())
		}
	}()
	eventually.True(sh.t, fmt.Sprintf("%q and a prompt after typing %q", want, line), func() bool {
		out := sh.seen()
		i := strings.LastIndex(out, want)
		return i >= 0 && (strings.HasSuffix(out[i:], "# ") || strings.HasSuffix(out[i:], "$ "))
	})
}

func (sh *shell) wait() error {
	sh.t.Helper()
	select {
	case err := <-sh.done:
		return err
	case <-time.After(eventually.HangGuard):
		sh.t.Fatal("the session did not end")
		return nil
	}
}

// TestRecording: sessions of a rule that names recorders are recorded over the overlay to
// the first recorder that accepts, and with enforceRecorder refused or cut when none can.
func TestRecording(t *testing.T) {
	rn := startRecordNet(t)
	cl := rn.ssh()

	// A PTY shell: the recording holds what the user saw, the window change and the exit code.
	sh := startShell(t, cl, 100, 30)
	sh.run("echo rec-$((6*7))", "rec-42")
	// With a reply asked for (Session.WindowChange asks none), the size is set before the next
	// line: the server takes requests and data on separate goroutines, so "stty size" typed
	// right after an unanswered window change could run first.
	if ok, err := sh.s.SendRequest("window-change", true, ssh.Marshal(windowChangeMsg{Cols: 120, Rows: 40})); err != nil || !ok {
		t.Fatalf("window change: %v %v", ok, err)
	}
	sh.run("stty size", "40 120")
	io.WriteString(sh.stdin, "exit 3\n")
	var ee *ssh.ExitError
	if err := sh.wait(); !errors.As(err, &ee) || ee.ExitStatus() != 3 {
		t.Fatalf("shell: %v, want exit status 3", err)
	}
	c := only(t, rn.rec[0], 1)
	if got, want := c.output(), sh.seen(); got != want {
		t.Errorf("recorded output %q\nthe user saw     %q", got, want)
	}
	if c.header["width"] != 100.0 || c.header["height"] != 30.0 || c.header["env"].(map[string]any)["TERM"] != "xterm" {
		t.Errorf("header %v", c.header)
	}
	if !c.has("r", "120x40") {
		t.Errorf("no resize event in %v", c.events)
	}
	for _, e := range c.events {
		if e[1] == "i" {
			t.Errorf("input recorded without recordInput: %v", e)
		}
	}
	m := c.meta
	if m.State != recorder.Ended || m.ExitCode == nil || *m.ExitCode != 3 || m.SrcUser != "alice@example.com" ||
		m.SrcNode != "laptop" || m.TargetNode != "web" || m.LocalUser != rn.local {
		t.Errorf("meta %+v", m)
	}

	// exec without a terminal: stdout and stderr recorded as output.
	s, _ := cl.NewSession()
	out, err := s.CombinedOutput("echo to-out; echo to-err >&2")
	if err != nil {
		t.Fatal(err)
	}
	c = only(t, rn.rec[0], 2, c.meta.ID)
	// stdout and stderr are separate streams: only each one's order is kept.
	if got, want := sortedLines(c.output()), sortedLines(string(out)); !slices.Equal(got, want) || !slices.Contains(got, "to-err") {
		t.Errorf("exec recorded %q, the user saw %q", c.output(), out)
	}

	// With recordInput, what the user typed is recorded too, as "i" events.
	rn.install(true, true)
	sh = startShell(t, rn.ssh(), 80, 24)
	sh.run("echo typed-$((2*3))", "typed-6")
	io.WriteString(sh.stdin, "exit\n")
	sh.wait()
	seen := []string{m.ID, c.meta.ID}
	c = only(t, rn.rec[0], 3, seen...)
	if c.text("i") != "echo typed-$((2*3))\nexit\n" || !strings.Contains(c.output(), "typed-6") {
		t.Errorf("recordInput: events %v", c.events)
	}

	// A command far longer than a header line may be is recorded, its header keeping the
	// command's start.
	seen = append(seen, c.meta.ID)
	s, _ = cl.NewSession()
	if out, err := s.CombinedOutput("echo long-command; : " + strings.Repeat("\x01", 100<<10)); err != nil || string(out) != "long-command\n" {
		t.Fatalf("long command: %q %v", out, err)
	}
	c = only(t, rn.rec[0], 4, seen...)
	if cmd, _ := c.header["command"].(string); !strings.HasPrefix(cmd, "echo long-command; : ") || len(cmd) > 4<<10 || c.output() != "long-command\n" {
		t.Errorf("long command's recording: header command of %d bytes, output %q", len(cmd), c.output())
	}

	// Without enforceRecorder, the recorder dying mid-session leaves the session running,
	// logged and counted.
	rn.setPolicy(false)
	cl = rn.ssh() // the rule at login decides how its sessions are recorded
	sh = startShell(t, cl, 80, 24)
	sh.run("echo before", "before")
	rn.rec[0].Close()
	eventually.True(t, "the broken recording counted", func() bool { return rn.failures(failMidway) == 1 })
	sh.run("echo after-$((1+1))", "after-2")
	io.WriteString(sh.stdin, "exit\n")
	if err := sh.wait(); err != nil {
		t.Fatalf("unenforced session after its recorder died: %v", err)
	}

	// enforceRecorder, rec1 down: rec2 records (failover); then rec2 dying cuts the session.
	rn.setPolicy(true)
	cl = rn.ssh()
	start := time.Now()
	sh = startShell(t, cl, 80, 24)
	sh.run("echo on-rec2", "on-rec2")
	t.Logf("failover to rec2 took %v", time.Since(start))
	if l := rn.rec[1].Store().List(); len(l) != 1 || l[0].State != recorder.Recording {
		t.Fatalf("rec2 holds %+v, want the session's recording in progress", l)
	}
	rn.rec[1].Close()
	err = sh.wait()
	if !strings.Contains(sh.seen(), "the recording of this session broke") {
		t.Errorf("cut session showed %q (%v)", sh.seen(), err)
	}
	if got := rn.failures(failMidway); got != 2 {
		t.Errorf("midway failures %v, want 2", got)
	}

	// enforceRecorder, no recorder up: refused within 5 s, saying why.
	s, _ = cl.NewSession()
	start = time.Now()
	out, err = s.CombinedOutput("echo must-not-run")
	took := time.Since(start)
	if !errors.As(err, &ee) || ee.ExitStatus() != 1 || strings.Contains(string(out), "must-not-run") ||
		!strings.Contains(string(out), "must be recorded (enforceRecorder), and no recorder accepted") {
		t.Errorf("unrecordable enforced session: %q %v", out, err)
	}
	if took > 5500*time.Millisecond {
		t.Errorf("refused after %v, want within 5 s", took)
	}
	t.Logf("refused in %v: %s", took, out)

	// Without enforceRecorder, no recorder up: the session runs unrecorded, counted.
	rn.setPolicy(false)
	cl = rn.ssh()
	before := rn.failures(failStart)
	s, _ = cl.NewSession()
	if out, err = s.CombinedOutput("echo unrecorded-ok"); err != nil || !strings.Contains(string(out), "unrecorded-ok") {
		t.Errorf("unenforced session without recorders: %q %v", out, err)
	}
	if got := rn.failures(failStart); got != before+1 {
		t.Errorf("start failures %v, want %v", got, before+1)
	}

	// A login let in without enforced recording (this one unrecorded) is cut when its rule
	// comes to enforce it.
	rn.setPolicy(false)
	sh = startShell(t, rn.ssh(), 80, 24)
	sh.run("echo unrecorded-shell", "unrecorded-shell")
	rn.setPolicy(true)
	sh.wait()
	if !strings.Contains(sh.seen(), "Access revoked.") {
		t.Errorf("unrecorded session under an enforcing rule showed %q", sh.seen())
	}
}
