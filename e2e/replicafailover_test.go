//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"tsconnect/agent"
	"tsconnect/console/api"
	"tsconnect/internal/eventually"
	"tsconnect/internal/testpg"
	"tsconnect/node"
)

// failoverNet is two `tsconnect control` replicas on one real PostgreSQL, an agent (a
// `tsconnect up --ssh` process) and a native client node (laptop), both given replica A's
// URL only, and another native client (desk) given B's.
type failoverNet struct {
	tb       testing.TB
	db       string
	a, b     *replica
	sock     string // the agent's local API
	agentDir string
	agentKey string
	agent    *proc
	laptop   *node.Node
	desk     *node.Node // given replica B's URL: its path to the agent crosses the relays' mesh
}

// failoverFigures are what one failover measured, from the SIGKILL of the replica.
type failoverFigures struct {
	agentBack, laptopBack time.Duration // its map stream up on the other replica
	resume                time.Duration // the open SSH sessions' next echoes
	revoke                time.Duration // a policy edit through the survivor to both sessions' end
}

func newFailoverNet(tb testing.TB) *failoverNet {
	db := testpg.Start(tb).NewDatabase(tb)
	rs := startReplicas(tb, db, 2)
	f := &failoverNet{tb: tb, db: db, a: rs[0], b: rs[1], agentDir: tb.TempDir()}
	f.sock = filepath.Join(f.agentDir, "agent.sock")
	cli(tb, "users", "create", "--state", f.a.dir, "alice@example.com")
	cliOwnNodesPolicy(tb, f.b.dir)
	f.agentKey = lastLine(cli(tb, "keys", "create", "--state", f.a.dir, "--user", "alice@example.com"))
	f.startAgent()
	key := lastLine(cli(tb, "keys", "create", "--state", f.b.dir, "--user", "alice@example.com", "--reusable"))
	f.laptop = f.startClient(f.a, key, "laptop")
	f.desk = f.startClient(f.b, key, "desk")
	n := f.laptop
	// Both learn B from their maps on A; the agent keeps it in its state file.
	eventually.True(tb, "the laptop knows replica B from its map", func() bool { return slices.Contains(n.ControlURLs(), f.b.url) })
	eventually.True(tb, "the agent knows replica B", func() bool { return slices.Contains(f.agentStatus().ControlURLs, f.b.url) })
	state, err := os.ReadFile(filepath.Join(f.agentDir, "node.json"))
	if err != nil || !strings.Contains(string(state), f.b.url) {
		tb.Fatalf("the agent's state file does not keep replica B's URL %s (%v):\n%s", f.b.url, err, state)
	}
	return f
}

// startClient starts a native node with a state directory, given r's URL only.
func (f *failoverNet) startClient(r *replica, key, name string) *node.Node {
	n, err := node.New(node.Options{ControlURL: r.url, AuthKey: key, Hostname: name, StateDir: f.tb.TempDir(), Logf: prefixed(f.tb, name+": ")})
	if err != nil {
		f.tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		f.tb.Fatal(err)
	}
	f.tb.Cleanup(func() { n.Close() })
	return n
}

// startAgent starts the agent, given replica A's URL only, and waits until it serves.
func (f *failoverNet) startAgent() {
	f.agent = startProc(f.tb, "--socket", f.sock, "up", "--ssh", "--hostname", "server", "--login-server", f.a.url, "--auth-key", f.agentKey, "--state", f.agentDir)
	waitStatus(f.tb, f.sock, "server")
}

// agentStatus is `tsconnect status --json` of the agent.
func (f *failoverNet) agentStatus() agent.Status { return statusAt(f.sock) }

// statusAt is `tsconnect status --json` of the agent serving socket sock (zero when it
// does not answer).
func statusAt(sock string) agent.Status {
	var st agent.Status
	out, err := exec.Command(tsconnectBin, "--socket", sock, "status", "--json").Output()
	if err == nil {
		json.Unmarshal(out, &st)
	}
	return st
}

// kill SIGKILLs r's process and returns when it is dead.
func (f *failoverNet) kill(r *replica) time.Time { return f.signal(r, syscall.SIGKILL) }

// signal sends r's process sig and returns when it has ended (t0 is when it was sent).
func (f *failoverNet) signal(r *replica, sig syscall.Signal) (t0 time.Time) {
	t0 = time.Now()
	r.proc.cmd.Process.Signal(sig)
	r.proc.cmd.Wait()
	if sig == syscall.SIGKILL {
		t0 = time.Now()
	}
	return t0
}

// restart starts r's control again on its address, state and database.
func (f *failoverNet) restart(r *replica) {
	r.proc = startProc(f.tb, "control", "--listen", strings.TrimPrefix(r.url, "http://"), "--state", r.dir, "--store", f.db)
	waitHTTP(f.tb, r.url+"/")
}

// waitMoved waits until the agent's and the laptop's map streams are up on to, and returns
// how long after t0 each was seen there.
func (f *failoverNet) waitMoved(to *replica, t0 time.Time) (agentBack, laptopBack time.Duration) {
	deadline := t0.Add(30 * time.Second)
	for agentBack == 0 || laptopBack == 0 {
		if time.Now().After(deadline) {
			f.tb.Fatalf("not both on %s 30 s after the kill: agent on %q, laptop on %q", to.url, f.agentStatus().ControlURL, f.laptop.ControlURL())
		}
		if laptopBack == 0 && f.laptop.ControlURL() == to.url {
			laptopBack = time.Since(t0)
		}
		if agentBack == 0 && f.agentStatus().ControlURL == to.url {
			agentBack = time.Since(t0)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return agentBack, laptopBack
}

// nodeOnline reports whether the control in dir lists node name online.
func nodeOnline(tb testing.TB, dir, name string) bool {
	var nodes []api.Node
	if err := json.Unmarshal([]byte(cli(tb, "nodes", "--state", dir, "--json")), &nodes); err != nil {
		tb.Fatal(err)
	}
	for _, nd := range nodes {
		if nd.Name == name {
			return nd.Online
		}
	}
	return false
}

// failover opens echoing SSH sessions laptop → agent (both on A's relay) and desk → agent
// (B's relay to A's, through the mesh), SIGKILLs replica A, and checks that agent and laptop
// move to B, both sessions still echo (the agent's path moved to B's relay, where desk is),
// the agent is online on B, a new SSH login works, and a policy edit through B cuts both
// sessions.
func (f *failoverNet) failover() failoverFigures {
	tb := f.tb
	cl := sshDial(tb, f.laptop, "server")
	echo, cut := echoSessionDone(tb, cl)
	echo("before the kill")
	deskEcho, deskCut := echoSessionDone(tb, sshDial(tb, f.desk, "server"))
	deskEcho("desk, before the kill")

	var fig failoverFigures
	t0 := f.kill(f.a)
	fig.agentBack, fig.laptopBack = f.waitMoved(f.b, t0)
	echo("after the kill of A")
	deskEcho("desk, after the kill of A")
	fig.resume = time.Since(t0)
	if got := f.desk.ControlURL(); got != f.b.url {
		tb.Fatalf("desk, on the surviving B, streams from %q", got)
	}
	if !nodeOnline(tb, f.b.dir, "server") {
		tb.Fatal("B does not list the agent online after it moved there")
	}
	cl2 := sshDial(tb, f.laptop, "server")
	if out, code := run(tb, cl2, "echo new login", nil); string(out) != "new login\n" || code != 0 {
		tb.Fatalf("a new SSH login after the failover: %q exit %d", out, code)
	}

	tp := time.Now()
	cliPolicy(tb, f.b.dir, `{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:80"]}]}`)
	for _, c := range []<-chan struct{}{cut, deskCut} {
		select {
		case <-c:
		case <-time.After(20 * time.Second):
			tb.Fatal("a session survived a policy edit through B that forbids it")
		}
	}
	fig.revoke = time.Since(tp)
	return fig
}

// TestReplicaFailover: with two replicas on one PostgreSQL, an agent and a native client
// that were given replica A's URL only learn B's from their maps (the agent keeps it in
// its state file). A is killed with SIGKILL: both reconnect to B, the open SSH session
// between them and one from a client on B still echo (their relay paths moved to B's
// relay), the agent is online on B, a new SSH login works, and a policy edit through B
// cuts both sessions. The agent
// restarted while A is down comes up on B (from its state file). Then A is
// started again and B stopped cleanly (SIGTERM): both move back to A, a new session echoes
// on, and A lists the agent online (B's word that its streams are gone does not flap it).
func TestReplicaFailover(t *testing.T) {
	f := newFailoverNet(t)
	fig := f.failover()
	t.Logf("A killed: the agent's map stream up on B after %v, the laptop's after %v; both open sessions echoed %v after the kill; a policy edit through B cut both %v after the edit began",
		fig.agentBack.Round(time.Millisecond), fig.laptopBack.Round(time.Millisecond), fig.resume.Round(time.Millisecond), fig.revoke.Round(time.Millisecond))

	// The agent killed and restarted while A is down comes up on B, which its state file names.
	f.agent.cmd.Process.Signal(syscall.SIGKILL)
	f.agent.cmd.Wait()
	ts := time.Now()
	f.startAgent()
	t.Logf("the agent, killed and restarted while A is down, served (on B) %v after its start", time.Since(ts).Round(time.Millisecond))
	if got := f.agentStatus().ControlURL; got != f.b.url {
		t.Fatalf("the agent restarted while A is down streams from %q; want B, %s", got, f.b.url)
	}

	// Back to A: restart it, allow SSH again, stop B.
	cliOwnNodesPolicy(t, f.b.dir)
	f.restart(f.a)
	cl := sshDial(t, f.laptop, "server")
	echo, _ := echoSessionDone(t, cl)
	echo("before the stop of B")
	t0 := f.signal(f.b, syscall.SIGTERM)
	agentBack, laptopBack := f.waitMoved(f.a, t0)
	echo("after the stop of B")
	t.Logf("B stopped (SIGTERM): the agent back on A after %v, the laptop after %v; the session echoed %v after the signal",
		agentBack.Round(time.Millisecond), laptopBack.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond) // B has exited: its announcements are committed; let A apply them
	if !nodeOnline(t, f.a.dir, "server") || !nodeOnline(t, f.a.dir, "laptop") {
		t.Fatal("A does not list the agent and the laptop online after they moved back from the stopped B")
	}
}

// BenchmarkReplicaFailover prints, for a SIGKILL of the replica an agent and a client are
// on (two replicas on one PostgreSQL): how long until each one's map stream is up on the
// other replica, until their open SSH session echoes again, and how long a policy edit
// through the survivor then takes to cut the session. `make bench` prints it.
func BenchmarkReplicaFailover(b *testing.B) {
	for range b.N {
		f := newFailoverNet(b)
		fig := f.failover()
		b.ReportMetric(fig.agentBack.Seconds(), "s-agent-reconnect")
		b.ReportMetric(fig.laptopBack.Seconds(), "s-client-reconnect")
		b.ReportMetric(fig.resume.Seconds(), "s-session-resume")
		b.ReportMetric(fig.revoke.Seconds(), "s-revoke")
	}
}
