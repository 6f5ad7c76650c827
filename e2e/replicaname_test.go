//go:build linux

package e2e

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"tsconnect/controlws"
	"tsconnect/internal/dialaddrs"
	"tsconnect/internal/eventually"
	"tsconnect/internal/metrics/metricstest"
	"tsconnect/internal/testpg"
	"tsconnect/key"
)

// controlName is the one public name of the replicas in TestReplicasFailoverByName.
const controlName = "control.tsc.test"

// portOnAll returns a TCP port that is free on each of the addresses ips.
func portOnAll(t testing.TB, ips ...string) string {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", net.JoinHostPort(ips[0], "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
		lns := []net.Listener{ln}
		for _, ip := range ips[1:] {
			if l, err := net.Listen("tcp", net.JoinHostPort(ip, port)); err == nil {
				lns = append(lns, l)
			}
		}
		for _, l := range lns {
			l.Close()
		}
		if len(lns) == len(ips) {
			return port
		}
	}
	t.Fatalf("no port free on all of %v", ips)
	return ""
}

// hostsLines is an /etc/hosts body that gives name each of ips, in order.
func hostsLines(name string, ips ...string) string {
	var b strings.Builder
	for _, ip := range ips {
		b.WriteString(ip + " " + name + "\n")
	}
	return b.String()
}

// firstMap registers a machine with authKey over a control connection to url (this
// test's process, no relay) and returns the first map it is sent; the connection is closed.
func firstMap(t testing.TB, url, authKey string) *controlws.NetworkMap {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), eventually.HangGuard)
	defer cancel()
	c, err := controlws.Dial(ctx, controlws.DialOptions{ServerURL: url, MachineKey: key.NewPrivate()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	nk := key.NewPrivate()
	if _, err := c.Register(ctx, controlws.RegisterRequest{AuthKey: authKey, NodeKey: nk.Public(), Hostinfo: controlws.Hostinfo{Hostname: "probe"}}); err != nil {
		t.Fatal(err)
	}
	var nm *controlws.NetworkMap
	mctx, stop := context.WithCancel(ctx)
	defer stop()
	c.WatchMaps(mctx, controlws.MapRequest{NodeKey: nk.Public()}, func(m *controlws.NetworkMap) {
		if nm == nil {
			nm = m
			stop()
		}
	})
	if nm == nil {
		t.Fatalf("no map from %s", url)
	}
	return nm
}

// oneName is two `tsconnect control` replicas on one real PostgreSQL behind one public
// name: they listen on one port at 127.0.0.1 and 127.0.0.2, both with --server-url
// http://control.tsc.test:PORT, so the maps list that one URL and the embedded relay's host
// is that one name. Agents run in mount namespaces of their own whose /etc/hosts gives the
// name the addresses they are given.
type oneName struct {
	t         *testing.T
	ips       []string
	public    string
	rs        []*replica
	key       string // a reusable key of alice's
	metricsOf map[*replica]string
}

func newOneName(t *testing.T) *oneName {
	if os.Getuid() != 0 {
		t.Skip("needs root: the agents run in mount namespaces of their own (unshare --mount) whose /etc/hosts gives " + controlName + " both replicas' addresses; run the e2e tests as root")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatalf("util-linux unshare is needed (scripts/deps.sh installs it): %v", err)
	}
	o := &oneName{t: t, ips: []string{"127.0.0.1", "127.0.0.2"}, metricsOf: map[*replica]string{}}
	port := portOnAll(t, o.ips...)
	o.public = "http://" + net.JoinHostPort(controlName, port)
	db := testpg.Start(t).NewDatabase(t)
	for _, ip := range o.ips {
		m := freePort(t)
		r := startReplica(t, db, net.JoinHostPort(ip, port), "--server-url", o.public, "--metrics-listen", m)
		o.rs, o.metricsOf[r] = append(o.rs, r), "http://"+m+"/metrics"
	}
	for _, r := range o.rs {
		waitHTTP(t, r.url+"/")
	}
	a := o.rs[0]
	cli(t, "users", "create", "--state", a.dir, "alice@example.com")
	cliOwnNodesPolicy(t, a.dir)
	o.key = lastLine(cli(t, "keys", "create", "--state", a.dir, "--user", "alice@example.com", "--reusable"))
	return o
}

// streams is how many map streams r holds.
func (o *oneName) streams(r *replica) int {
	return int(metricstest.Scrape(o.t, o.metricsOf[r])["tsconnect_control_map_streams"])
}

// agent starts `tsconnect up` as name (with --ssh if ssh) in a mount namespace whose
// /etc/hosts is hosts, and returns its local API's socket.
func (o *oneName) agent(hosts, name string, ssh bool) string {
	dir := o.t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	args := []string{"--socket", sock, "up", "--hostname", name, "--login-server", o.public, "--auth-key", o.key, "--state", dir}
	if ssh {
		args = append(args, "--ssh")
	}
	startInHosts(o.t, hosts, nil, args...)
	return sock
}

// shell opens an interactive OpenSSH session from the agent at laptop to root@server.
func (o *oneName) shell(laptop string) *sshShell {
	var hostKeys []string
	for _, p := range statusAt(laptop).Peers {
		if p.Name == "server" {
			hostKeys = p.SSHHostKeys
		}
	}
	return opensshVia(o.t, laptop, "server", hostKeys).shell("root@server")
}

// TestReplicasFailoverByName: two replicas behind one name (oneName). Two agent processes
// (the SSH server and the laptop, the client side OpenSSH's ProxyCommand `tsconnect nc`
// goes through) get both addresses; a third agent's /etc/hosts gives it only the replica
// the others are on. An interactive OpenSSH session laptop → server is open when that
// replica is killed with SIGKILL: the two agents' map streams come up on the other replica
// (the name's second address), the session echoes a line typed after the kill, the third
// agent does not reconnect (no other address to try: the failover is the name's doing),
// and a policy edit through the survivor ends the session. Times are printed, not asserted.
func TestReplicasFailoverByName(t *testing.T) {
	o := newOneName(t)
	ips, public, rs, key, streams, startAgentIn := o.ips, o.public, o.rs, o.key, o.streams, o.agent
	a := rs[0]
	// What the replicas hand nodes names no address: the control URLs are the public one only
	// and the embedded relay is reached at that host, by name.
	nm := firstMap(t, a.url, key)
	if !slices.Equal(nm.ControlURLs, []string{public}) {
		t.Fatalf("the map lists control URLs %q; want %s only", nm.ControlURLs, public)
	}
	for id, r := range nm.DERPMap.Regions {
		for _, n := range r.Nodes {
			if n.HostName != controlName || n.IPv4 != "" || n.IPv6 != "" {
				t.Fatalf("the map's relay region %d has a node at %q (IPv4 %q, IPv6 %q); want %s, by name only", id, n.HostName, n.IPv4, n.IPv6, controlName)
			}
		}
	}

	both := hostsLines(controlName, ips...)
	server := startAgentIn(both, "server", true)
	laptop := startAgentIn(both, "laptop", false)
	waitStatus(t, laptop, "server")

	// The map carries the one public URL: a node has no other replica's URL to turn to.
	for _, sock := range []string{server, laptop} {
		if st := statusAt(sock); st.ControlURL != public || !slices.Equal(st.ControlURLs, []string{public}) {
			t.Fatalf("agent %s streams from %q and knows %q; want %s only", sock, st.ControlURL, st.ControlURLs, public)
		}
	}
	var home, other *replica
	eventually.True(t, "both agents' map streams on one replica", func() bool {
		for i, r := range rs {
			if streams(r) == 2 && streams(rs[1-i]) == 0 {
				home, other = r, rs[1-i]
				return true
			}
		}
		return false
	})
	t.Logf("both agents stream from the replica at %s (of %s's addresses %v, in that order)", home.url, controlName, ips)
	homeURL, _ := url.Parse(home.url)
	lonely := startAgentIn(hostsLines(controlName, homeURL.Hostname()), "lonely", false)
	eventually.True(t, "the agent given only the first replica's address streaming from it", func() bool { return streams(home) == 3 })

	sh := o.shell(laptop)
	sh.echo("before the kill")

	home.proc.cmd.Process.Kill()
	home.proc.cmd.Wait()
	t0 := time.Now()
	back := eventually.Took(t, "both agents' map streams on the surviving replica", func() bool { return streams(other) == 2 })
	sh.echo("after the kill")
	resume := time.Since(t0)
	for _, sock := range []string{server, laptop} {
		if st := statusAt(sock); st.ControlURL != public {
			t.Fatalf("agent %s streams from %q after the kill; want %s (its second address)", sock, st.ControlURL, public)
		}
	}
	if !nodeOnline(t, other.dir, "server") {
		t.Fatal("the surviving replica does not list the SSH server online")
	}

	// The agent whose name has only the dead replica's address stays off: had it found the
	// survivor some other way, the failover above would not show that the name's second
	// address did it. It gets as long as the others took, and dialaddrs' per-address bound more.
	time.Sleep(time.Until(t0.Add(back + 2*dialaddrs.AddrTimeout)))
	if st := statusAt(lonely); st.ControlURL != "" || streams(other) != 2 {
		t.Fatalf("the agent given only the dead replica's address streams from %q; the survivor holds %d map streams; want none and 2", st.ControlURL, streams(other))
	}

	tp := time.Now()
	cliPolicy(t, other.dir, `{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:80"]}]}`)
	select {
	case <-sh.done:
	case <-time.After(eventually.HangGuard):
		t.Fatal("the SSH session survived a policy edit through the surviving replica that forbids it")
	}
	revoke := time.Since(tp)
	t.Logf("replica at %s killed: both agents' map streams up on %s after %v; the open OpenSSH session echoed %v after the kill; a policy edit through the survivor ended it %v after the edit began",
		home.url, other.url, back.Round(time.Millisecond), resume.Round(time.Millisecond), revoke.Round(time.Millisecond))
}

// TestReplicasBehindOneNameMesh: two replicas behind one name, the SSH server's agent homed
// on one (its /etc/hosts lists 127.0.0.1 first) and the laptop's on the other (127.0.0.2
// first). Their relays mesh at each other's own address (control.Config.RelayAddr, from
// --listen), not at the shared name, which would lead a relay back to itself or to
// nowhere: so the laptop's packets reach the server through the two relays, and an
// OpenSSH session between them opens and echoes.
func TestReplicasBehindOneNameMesh(t *testing.T) {
	o := newOneName(t)
	server := o.agent(hostsLines(controlName, o.ips[0], o.ips[1]), "server", true)
	laptop := o.agent(hostsLines(controlName, o.ips[1], o.ips[0]), "laptop", false)
	waitStatus(t, laptop, "server")
	eventually.True(t, "one agent's map stream on each replica", func() bool { return o.streams(o.rs[0]) == 1 && o.streams(o.rs[1]) == 1 })
	for _, sock := range []string{server, laptop} {
		if st := statusAt(sock); st.ControlURL != o.public {
			t.Fatalf("agent %s streams from %q; want %s", sock, st.ControlURL, o.public)
		}
	}
	sh := o.shell(laptop)
	sh.echo("across the relays' mesh")
	for i, r := range o.rs {
		other := o.ips[1-i]
		if !strings.Contains(r.proc.out.String(), "relay meshes with "+o.public+"/derp at "+other+":") {
			t.Errorf("replica %s does not log meshing with the other's own address %s:\n%s", r.url, other, r.proc.out.String())
		}
	}
}
