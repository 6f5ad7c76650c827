package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"tsconnect/agent"
	"tsconnect/control"
	"tsconnect/controlws"
	"tsconnect/internal/eventually"
)

// TestLoginRotatesKeyKeepingSession: an SSH session from the client agent's node to the
// srv agent echoes lines; `tsconnect login --auth-key` on srv re-authenticates it and
// rotates its node key, then `tsconnect login` on the client does it interactively (the
// owner signs in at the URL it prints). After each rotation the node is the same (ID,
// name, addresses, machine key, owner, a later key expiry), the peer's map carries the new
// key, and the open session keeps echoing.
func TestLoginRotatesKeyKeepingSession(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatalf("needs root to log in as root (uid %d)", os.Geteuid())
	}
	tn := newTestNet(t)
	srv := tn.startAgent("srv")
	client := tn.startAgent("client")
	cl, _, err := sshTry(t, client.Node(), "srv", "root")
	if err != nil {
		t.Fatal(err)
	}
	echo := echoSession(t, cl)
	echo("before")

	rotated := func(a *agent.Agent, peer *agent.Agent, before controlws.Node) {
		t.Helper()
		eventually.True(t, "the node's own map to carry its new key", func() bool {
			return a.Node().NetMap().Self.Key == a.Node().NodeKey()
		})
		after := a.Node().NetMap().Self
		if after.Key == before.Key {
			t.Fatalf("the node key did not change: %s → %s (node uses %s)", before.Key.ShortString(), after.Key.ShortString(), a.Node().NodeKey().ShortString())
		}
		if after.ID != before.ID || after.Name != before.Name || after.MachineKey != before.MachineKey ||
			after.User != before.User || !slices.Equal(after.Addresses, before.Addresses) || !after.KeyExpiry.After(before.KeyExpiry) {
			t.Errorf("after the rotation the node is %+v; want %+v with a new key and a later expiry", after, before)
		}
		eventually.True(t, "the peer's map to carry the new key", func() bool {
			p, ok := peer.Node().NetMap().PeerByName(before.Name)
			return ok && p.Key == after.Key
		})
	}

	// srv rotates with an auth key of its owner.
	before := srv.Node().NetMap().Self
	out, err := exec.Command(tsconnectBin, "--socket", tn.sockets["srv"], "login", "--auth-key", tn.authKey(control.AuthKeyOptions{})).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "re-authenticated; new node key") {
		t.Fatalf("tsconnect login --auth-key: %v\n%s", err, out)
	}
	rotated(srv, client, before)
	echo("after srv rotated")

	// client rotates interactively: the owner signs in at the URL it prints.
	before = client.Node().NetMap().Self
	cmd := exec.Command(tsconnectBin, "--socket", tn.sockets["client"], "login")
	cmd.Env = append(os.Environ(), "TSCONNECT_AUTH_KEY=")
	cmd.Env = slices.DeleteFunc(cmd.Env, func(e string) bool { return strings.HasPrefix(e, "TSCONNECT_AUTH_KEY=") })
	stderr, _ := cmd.StderrPipe()
	var stdout strings.Builder
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	loginRe := regexp.MustCompile(`^\s*(http://\S+/login/([0-9a-f]{32}))\s*$`)
	sc := bufio.NewScanner(stderr)
	signedIn := false
	for sc.Scan() {
		if m := loginRe.FindStringSubmatch(sc.Text()); m != nil {
			if err := tn.srv.CompleteLogin(context.Background(), m[2], tn.owner.ID); err != nil {
				t.Fatalf("signing in at %s: %v", m[1], err)
			}
			signedIn = true
			break
		}
	}
	if !signedIn {
		t.Fatal("tsconnect login printed no sign-in URL")
	}
	io.Copy(io.Discard, stderr)
	if err := cmd.Wait(); err != nil || !strings.Contains(stdout.String(), "re-authenticated") {
		t.Fatalf("interactive tsconnect login: %v\n%s", err, stdout.String())
	}
	rotated(client, srv, before)
	echo("after client rotated")

	// A key of another user does not re-authenticate alice's node.
	bob := tn.cs.User("bob@example.com", control.RoleMember)
	out, err = exec.Command(tsconnectBin, "--socket", tn.sockets["srv"], "login", "--auth-key", tn.authKey(control.AuthKeyOptions{User: bob.ID})).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "may not re-authenticate") {
		t.Errorf("tsconnect login with bob's key on alice's node: %v\n%s", err, out)
	}
	echo("after the refused login")
}

// echoSession starts a shell on cl that echoes each line back as "echo LINE", and returns
// a function that sends one line, waits for its echo and returns how long that took.
func echoSession(tb testing.TB, cl *ssh.Client) func(what string) time.Duration {
	echo, _ := echoSessionDone(tb, cl)
	return echo
}

// echoSessionDone is echoSession, and a channel closed when the session's output ends (the
// session was cut).
func echoSessionDone(tb testing.TB, cl *ssh.Client) (echo func(what string) time.Duration, done <-chan struct{}) {
	s, err := cl.NewSession()
	if err != nil {
		tb.Fatal(err)
	}
	in, _ := s.StdinPipe()
	outR, _ := s.StdoutPipe()
	if err := s.Start(`while read l; do echo "echo $l"; done`); err != nil {
		tb.Fatal(err)
	}
	lines := make(chan string, 16)
	ended := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(ended)
		close(lines)
	}()
	return func(what string) time.Duration {
		tb.Helper()
		start := time.Now()
		io.WriteString(in, what+"\n")
		select {
		case l, ok := <-lines:
			if !ok || l != "echo "+what {
				tb.Fatalf("session after %s: got %q (open %v)", what, l, ok)
			}
			took := time.Since(start)
			tb.Logf("%s: echoed after %v", what, took.Round(time.Millisecond))
			return took
		case <-time.After(30 * time.Second):
			tb.Fatalf("the session stopped echoing (%s)", what)
		}
		return 0
	}, ended
}

// BenchmarkKeyRotation measures a rotation of the agent holding an open SSH session
// (Agent.Login with an auth key, as tsconnect login does): how long Login takes, how long
// until the peer's map carries the new key, and how long the session's next echo then
// takes (the WireGuard handshake under the new key included). `make bench` prints it.
func BenchmarkKeyRotation(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Fatalf("needs root to log in as root (uid %d)", os.Geteuid())
	}
	tn := newTestNet(b)
	srv := tn.startAgent("srv")
	client := tn.startAgent("client")
	cl, _, err := sshTry(b, client.Node(), "srv", "root")
	if err != nil {
		b.Fatal(err)
	}
	echo := echoSession(b, cl)
	echo("warm-up")
	var login, toPeer, echoed time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if err := srv.Login(context.Background(), tn.authKey(control.AuthKeyOptions{}), nil); err != nil {
			b.Fatal(err)
		}
		login += time.Since(start)
		k := srv.Node().NodeKey()
		eventually.True(b, "the peer's map to carry the new key", func() bool {
			p, ok := client.Node().NetMap().PeerByName("srv")
			return ok && p.Key == k
		})
		toPeer += time.Since(start)
		echoed += echo(fmt.Sprintf("rotation %d", i))
	}
	n := float64(b.N)
	b.ReportMetric(float64(login.Milliseconds())/n, "ms-login")
	b.ReportMetric(float64(toPeer.Milliseconds())/n, "ms-to-peer-map")
	b.ReportMetric(float64(echoed.Microseconds())/1000/n, "ms-next-echo")
}
