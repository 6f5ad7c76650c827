//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"tsconnect/console/api"
	"tsconnect/control/store/pgstore"
	"tsconnect/internal/eventually"
	"tsconnect/internal/testpg"
	"tsconnect/node"
)

// replica is one `tsconnect control` process of a replicated control.
type replica struct {
	dir, url string
	proc     *proc
}

// startReplicas starts n control processes on database db, each with its own --state
// and listen address, and waits until they all serve.
func startReplicas(t testing.TB, db string, n int) []*replica {
	t.Helper()
	rs := make([]*replica, n)
	for i := range rs {
		rs[i] = startReplica(t, db, freePort(t))
	}
	for _, r := range rs {
		waitHTTP(t, r.url+"/")
	}
	return rs
}

// startReplica starts a control process on database db listening on addr (its URL is
// http://addr), with a --state of its own and args added; it does not wait for it to serve.
func startReplica(t testing.TB, db, addr string, args ...string) *replica {
	t.Helper()
	r := &replica{dir: t.TempDir(), url: "http://" + addr}
	r.proc = startProc(t, append([]string{"control", "--listen", addr, "--state", r.dir, "--store", db}, args...)...)
	return r
}

// cliPolicy sets policy text through the admin socket of the control in dir.
func cliPolicy(t testing.TB, dir, text string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "policy.hujson")
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cli(t, "policy", "set", "--state", dir, f)
}

// cliNodeID finds a live node by name through the admin socket of the control in dir.
func cliNodeID(t testing.TB, dir, name string) int64 {
	t.Helper()
	var nodes []api.Node
	if err := json.Unmarshal([]byte(cli(t, "nodes", "--state", dir, "--json")), &nodes); err != nil {
		t.Fatal(err)
	}
	for _, nd := range nodes {
		if nd.Name == name {
			return nd.ID
		}
	}
	t.Fatalf("control in %s lists no node %q", dir, name)
	return 0
}

// waitMapPeer waits until n's map has (want) or lacks (!want) a peer named name, which
// carries tag unless that is "".
func waitMapPeer(t *testing.T, n *node.Node, name string, want bool, what, tag string) {
	t.Helper()
	eventually.True(t, what, func() bool {
		nm := n.NetMap()
		if nm == nil {
			return false
		}
		p, has := nm.PeerByName(name)
		if !has || !want {
			return has == want
		}
		return tag == "" || slices.Contains(p.Tags, tag)
	})
}

// TestReplicasOnPostgres: two `tsconnect control` processes on one PostgreSQL database, each
// with its own --state, serve one network: a user made through A and a key made through B
// register nodes through both; each node's map (held by its own replica) has the other; a
// policy change through B takes on-b out of on-a's map on A; tags set through A bring it
// back; a node deleted through A leaves on-a's map and B stops serving it; both replicas
// list the same nodes.
func TestReplicasOnPostgres(t *testing.T) {
	db := testpg.Start(t).NewDatabase(t)
	rs := startReplicas(t, db, 2)
	a, b := rs[0], rs[1]
	cli(t, "users", "create", "--state", a.dir, "alice@example.com")
	const tagOwners = `"tagOwners": {"tag:web": ["alice@example.com"]}`
	cliPolicy(t, b.dir, `{`+tagOwners+`, "acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}`)
	key := lastLine(cli(t, "keys", "create", "--state", b.dir, "--user", "alice@example.com", "--reusable"))

	onB := startNodeAt(t, b.url, key, "on-b")
	onA := startNodeAt(t, a.url, key, "on-a")
	waitMapPeer(t, onB, "on-a", true, "on-a (registered through A) in on-b's map (on B)", "")
	waitMapPeer(t, onA, "on-b", true, "on-b in on-a's map", "")

	cliPolicy(t, b.dir, `{`+tagOwners+`, "acls": [{"action": "accept", "src": ["*"], "dst": ["tag:web:*"]}]}`)
	waitMapPeer(t, onA, "on-b", false, "on-b out of on-a's map (on A) after a policy change through B", "")

	idB := cliNodeID(t, a.dir, "on-b")
	cli(t, "nodes", "tag", "--state", a.dir, strconv.FormatInt(idB, 10), "tag:web")
	waitMapPeer(t, onA, "on-b", true, "on-b, tagged through A, back in on-a's map", "tag:web")

	onB2 := startNodeAt(t, b.url, key, "on-b-2")
	waitMapPeer(t, onB2, "on-b", true, "tagged on-b in on-b-2's map", "")
	cli(t, "nodes", "delete", "--state", a.dir, strconv.FormatInt(idB, 10))
	waitMapPeer(t, onA, "on-b", false, "on-b out of on-a's map after its deletion through A", "")
	waitMapPeer(t, onB2, "on-b", false, "on-b out of on-b-2's map (on B) after its deletion through A", "")
	eventually.True(t, "on-b stopped: B ended its connection", func() bool { return onB.State() == node.StateStopped })
	for _, r := range rs {
		var nodes []api.Node
		if err := json.Unmarshal([]byte(cli(t, "nodes", "--state", r.dir, "--json")), &nodes); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, nd := range nodes {
			names = append(names, nd.Name)
		}
		slices.Sort(names)
		if want := []string{"on-a", "on-b-2"}; !slices.Equal(names, want) {
			t.Fatalf("control in %s lists %v; want %v", r.dir, names, want)
		}
	}
}

// TestReplicasRelaysMesh: the relays embedded in two replicas mesh by themselves (no mesh
// flags): a node homed on replica A's relay SSHes to an agent homed on replica B's, and a
// policy change through A then cuts the session.
func TestReplicasRelaysMesh(t *testing.T) {
	db := testpg.Start(t).NewDatabase(t)
	rs := startReplicas(t, db, 2)
	a, b := rs[0], rs[1]
	cli(t, "users", "create", "--state", a.dir, "alice@example.com")
	cliOwnNodesPolicy(t, b.dir)
	adir := t.TempDir()
	sock := filepath.Join(adir, "agent.sock")
	agentKey := lastLine(cli(t, "keys", "create", "--state", a.dir, "--user", "alice@example.com"))
	startProc(t, "--socket", sock, "up", "--ssh", "--hostname", "server", "--login-server", b.url, "--auth-key", agentKey, "--state", adir)
	waitStatus(t, sock, "server")
	laptop := startNodeAt(t, a.url, lastLine(cli(t, "keys", "create", "--state", b.dir, "--user", "alice@example.com", "--ephemeral")), "laptop")
	cl := sshDial(t, laptop, "server")
	if out, code := run(t, cl, "echo across", nil); string(out) != "across\n" || code != 0 {
		t.Fatalf("SSH from a node on A to an agent on B: %q exit %d", out, code)
	}
	for _, r := range rs {
		if _, err := os.Stat(filepath.Join(r.dir, "derp.key")); err != nil {
			t.Fatalf("replica %s has no relay key of its own: %v", r.dir, err)
		}
	}
	_, pid, done := liveSession(t, cl)
	cliPolicy(t, a.dir, `{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:80"]}]}`)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the session on B's agent survived a policy change through A that forbids it")
	}
	eventually.True(t, "the session's process gone", func() bool { return gone(pid) })
}

// TestReplicasCheckAndLoginPages: pages of one replica settle what waits on another. bob's
// SSH login from a node on replica B to an agent on replica A is held under a check whose
// URL A gave; bob approves it with his password on B's /check/ID page and the held login
// goes into a shell. `tsconnect up` waiting on A for an interactive login is added by bob
// on B's /login/ID page and comes up.
func TestReplicasCheckAndLoginPages(t *testing.T) {
	db := testpg.Start(t).NewDatabase(t)
	rs := startReplicas(t, db, 2)
	a, b := rs[0], rs[1]
	const password = "a password of some length"
	cli(t, "users", "create", "--state", a.dir, "alice@example.com")
	if out, err := cliStdin(password+"\n", "users", "create", "--state", b.dir, "--password-stdin", "bob@example.com"); err != nil {
		t.Fatalf("users create: %v\n%s", err, out)
	}
	cliPolicy(t, b.dir, checkModePolicy)
	adir := t.TempDir()
	sock := filepath.Join(adir, "agent.sock")
	serverKey := lastLine(cli(t, "keys", "create", "--state", a.dir, "--user", "alice@example.com", "--tags", "tag:server"))
	startProc(t, "--socket", sock, "up", "--ssh", "--hostname", "server", "--login-server", a.url, "--auth-key", serverKey, "--state", adir)
	waitStatus(t, sock, "server")
	bobs := startNodeAt(t, b.url, lastLine(cli(t, "keys", "create", "--state", b.dir, "--user", "bob@example.com", "--ephemeral")), "bobs")

	h := startLogin(t, bobs, "server", "root")
	who, checkURL, id := h.waitCheckURL(t)
	if who != "bob@example.com" || !strings.HasPrefix(checkURL, a.url+"/check/") {
		t.Fatalf("check banner names %s at %s; want bob@example.com at %s/check/…", who, checkURL, a.url)
	}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	if status, body := postPageForm(t, hc, b.url, "/check/"+id, "approve", url.Values{"email": {"bob@example.com"}, "password": {password}}); status != 200 {
		t.Fatalf("approving on B's check page: %d\n%s", status, body)
	}
	h.wait(t)
	if h.err != nil {
		t.Fatalf("held login after approval on B: %v (banners %q)", h.err, h.banner.String())
	}
	if out, code := run(t, h.client, "echo in", nil); string(out) != "in\n" || code != 0 {
		t.Fatalf("shell after the check: %q exit %d", out, code)
	}

	up := startUp(t, a.url, t.TempDir())
	lid := up.loginID(t)
	jar, _ = cookiejar.New(nil)
	hc = &http.Client{Jar: jar}
	status, body := postLoginForm(t, hc, b.url, lid, "signin", url.Values{"email": {"bob@example.com"}, "password": {password}})
	if status != 200 || !strings.Contains(body, `value="confirm"`) {
		t.Fatalf("signing in on B's login page for a machine waiting on A: %d\n%s", status, body)
	}
	if status, body = postLoginForm(t, hc, b.url, lid, "confirm", url.Values{}); status != 200 {
		t.Fatalf("adding the machine on B: %d\n%s", status, body)
	}
	select {
	case <-up.up:
	case <-time.After(30 * time.Second):
		t.Fatalf("tsconnect up waiting on A did not come up after the login on B:\n%s", up.out.String())
	}
}

// TestReplicasSweepTakeover: replica A holds the ephemeral sweep's lease and is killed with
// SIGKILL, its ephemeral node closed just before (one still running would fail over to B);
// replica B takes the sweep over once the lease runs out and deletes the ephemeral node that
// was on A (offline since), while its own online ephemeral node stays.
func TestReplicasSweepTakeover(t *testing.T) {
	const grace = 2 * time.Second
	db := testpg.Start(t).NewDatabase(t)
	pg, err := pgstore.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	start := func() *replica {
		r := startReplica(t, db, freePort(t), "--ephemeral-grace", grace.String())
		waitHTTP(t, r.url+"/")
		return r
	}
	a := start()
	cli(t, "users", "create", "--state", a.dir, "alice@example.com")
	key := lastLine(cli(t, "keys", "create", "--state", a.dir, "--user", "alice@example.com", "--reusable", "--ephemeral"))
	onA := startNodeAt(t, a.url, key, "on-a")
	leaseHeld := func() bool {
		var n int
		return pg.DB().QueryRow(`SELECT count(*) FROM leases WHERE name = 'ephemeral-sweep'`).Scan(&n) == nil && n == 1
	}
	eventually.True(t, "A, alone, takes the sweep's lease", leaseHeld)
	b := start()
	startNodeAt(t, b.url, key, "on-b")
	waitListed := func(want ...string) {
		t.Helper()
		eventually.True(t, fmt.Sprintf("B lists %v", want), func() bool {
			var nodes []api.Node
			if json.Unmarshal([]byte(cli(t, "nodes", "--state", b.dir, "--json")), &nodes) != nil {
				return false
			}
			var names []string
			for _, nd := range nodes {
				names = append(names, nd.Name)
			}
			slices.Sort(names)
			return slices.Equal(names, want)
		})
	}
	waitListed("on-a", "on-b")

	// on-a goes with A (else it would fail over to B and stay online there).
	onA.Close()
	a.proc.cmd.Process.Signal(syscall.SIGKILL)
	a.proc.cmd.Wait()
	t0 := time.Now()
	waitListed("on-b")
	t.Logf("B deleted the ephemeral node of the killed A %v after the kill (grace and lease %v)", time.Since(t0).Round(10*time.Millisecond), grace)
	time.Sleep(2 * grace)
	waitListed("on-b") // its own online node stays
}
