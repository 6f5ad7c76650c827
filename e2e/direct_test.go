package e2e

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"tsconnect/agent"
	"tsconnect/control"
	"tsconnect/controlws"
	"tsconnect/derpws"
	"tsconnect/internal/eventually"
	"tsconnect/magicbind"
)

// startDirectAgent runs an SSH-serving agent with direct paths on a loopback UDP socket.
func (tn *testNet) startDirectAgent(name string) *agent.Agent {
	tn.t.Helper()
	return tn.startAgentWith(name, tn.authKey(control.AuthKeyOptions{}), func(c *agent.Config) {
		c.UDPListen, c.Interfaces = "127.0.0.1:0", magicbind.Loopback
	})
}

// waitPeerPublished waits until name's entry in a's map carries its disco key and endpoints.
func waitPeerPublished(t testing.TB, a *agent.Agent, name string) controlws.Node {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if nm := a.Node().NetMap(); nm != nil {
			if p, ok := nm.PeerByName(name); ok && !p.DiscoKey.IsZero() && len(p.Endpoints) > 0 {
				return p
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never published its disco key and endpoints", name)
	return controlws.Node{}
}

// reportedPath is from's path to peer as from's last report to control lists it.
func reportedPath(tn *testNet, from, peer *agent.Agent) (controlws.PeerPath, bool) {
	self, pm := from.Node().NetMap(), peer.Node().NetMap()
	if self == nil || pm == nil || len(pm.Self.Addresses) == 0 {
		return controlws.PeerPath{}, false
	}
	for _, p := range tn.srv.PeerPaths(self.Self.ID) {
		if p.Peer == pm.Self.Addresses[0].Addr() {
			return p, true
		}
	}
	return controlws.PeerPath{}, false
}

var (
	directPong = regexp.MustCompile(`^pong from b \(100\.[0-9.]+\) via direct 127\.0\.0\.1:[0-9]+ in [0-9.]+ms$`)
	relayPong  = regexp.MustCompile(`^pong from b \(100\.[0-9.]+\) via DERP\(tsc\) in [0-9.]+ms$`)
)

// TestDirectPaths: two agents on loopback, with control's relay answering STUN, publish
// their disco keys and endpoints, go direct (tsconnect ping and status say so, and the
// relay carries no packet of an SSH session's bulk transfer), and when one closes its UDP
// socket the session goes on through the relay, the other side back on it within 2 s.
func TestDirectPaths(t *testing.T) {
	stunPC, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tn := startTestNet(t, func(c *control.Config) { c.STUN = stunPC }, ownNodesPolicy)
	a, b := tn.startDirectAgent("a"), tn.startDirectAgent("b")
	pb := waitPeerPublished(t, a, "b")
	waitPeerPublished(t, b, "a")
	if want := b.Paths().Port(); pb.Endpoints[0].Addr().String() != "127.0.0.1" || pb.Endpoints[0].Port() != want {
		t.Fatalf("b's endpoints %v, want 127.0.0.1:%d", pb.Endpoints, want)
	}
	if nm := a.Node().NetMap(); nm.DERPMap.Regions[1].Nodes[0].STUNPort != stunPC.LocalAddr().(*net.UDPAddr).Port {
		t.Fatalf("the map's relay entry has STUNPort %d", nm.DERPMap.Regions[1].Nodes[0].STUNPort)
	}

	out := cli(t, "--socket", tn.sockets["a"], "ping", "-c", "10", "b")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !directPong.MatchString(lines[len(lines)-1]) {
		t.Fatalf("ping did not end on a direct pong:\n%s", out)
	}
	for _, l := range lines[:len(lines)-1] {
		if !relayPong.MatchString(l) {
			t.Fatalf("ping printed %q before the direct pong", l)
		}
	}
	t.Logf("tsconnect ping:\n%s", out)
	if st := cli(t, "--socket", tn.sockets["a"], "status"); !regexp.MustCompile(`b .*direct 127\.0\.0\.1:[0-9]+ [0-9.]+ms`).MatchString(st) {
		t.Fatalf("status does not show b direct:\n%s", st)
	}

	// An SSH session's bulk transfer does not touch the relay once direct.
	stdin, stdout := catSession(t, sshDial(t, a.Node(), "b"))
	echoed := func(n int, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		msg := bytes.Repeat([]byte("x"), n)
		errc := make(chan error, 1)
		go func() {
			got := make([]byte, n)
			_, err := io.ReadFull(stdout, got)
			errc <- err
		}()
		if _, err := stdin.Write(msg); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errc:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(within):
			t.Fatalf("echo of %d bytes not back within %v", n, within)
		}
		return time.Since(start)
	}
	echoed(100, 10*time.Second)
	ka, kb := a.Node().NodeKey(), b.Node().NodeKey()
	if !a.Paths().Path(kb).Direct.IsValid() {
		t.Fatal("a's path to b is not direct after the ping")
	}
	// b probes a once the session's first bytes came: both ways direct before measuring.
	eventually.True(t, "b's path to a direct", func() bool { return b.Paths().Path(ka).Direct.IsValid() })
	relayed := func() uint64 { return tn.srv.RelayStats(ka).PacketsIn + tn.srv.RelayStats(kb).PacketsIn }
	before := relayed()
	echoed(1<<20, 20*time.Second)
	if d := relayed() - before; d != 0 {
		t.Fatalf("the relay carried %d packets of a direct session's megabyte", d)
	}
	// a's report to control (the console's Machines page) lists b, direct at b's socket.
	bDirect := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), b.Paths().Port())
	eventually.True(t, "a's report of its direct path to b", func() bool {
		p, ok := reportedPath(tn, a, b)
		return ok && p.Direct == bDirect && p.RTTMillis > 0
	})

	// a's socket closes: a sends through the relay at once, b falls back within 2 s, and
	// the session goes on.
	a.Paths().Close()
	closed := time.Now()
	done := make(chan time.Duration, 1)
	go func() {
		for time.Since(closed) < 5*time.Second {
			if !b.Paths().Path(ka).Direct.IsValid() {
				done <- time.Since(closed)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		done <- -1
	}()
	stall := echoed(1000, 15*time.Second)
	fallback := <-done
	if fallback < 0 || fallback > 2*time.Second {
		t.Fatalf("b still sends direct %v after a's socket closed", time.Since(closed))
	}
	before = relayed()
	echoed(64<<10, 15*time.Second)
	if relayed() == before {
		t.Fatal("after the fallback the session's data did not go through the relay")
	}
	reported := eventually.Took(t, "b's report of its path to a back on the relay", func() bool {
		p, ok := reportedPath(tn, b, a)
		return ok && !p.Direct.IsValid() && p.RegionCode == control.EmbeddedRegionCode
	})
	t.Logf("b back on the relay %v after a's socket closed, in its report to control %v later; the session's first echo took %v", fallback, reported, stall)

	// b pings a, whose socket is closed: the relay answers, and ping says there is no
	// direct path (exit 0, a pong came).
	out = cli(t, "--socket", tn.sockets["b"], "ping", "-c", "2", "a")
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !regexp.MustCompile(`^pong from a \(100\.[0-9.]+\) via DERP\(tsc\) in [0-9.]+ms$`).MatchString(lines[0]) ||
		lines[2] != "no direct path: traffic goes through the relay" {
		t.Fatalf("ping of a relayed peer:\n%s", out)
	}
	// A node without direct paths (as the browser's) gets no disco pings: exit 1.
	tn.startNode("c")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, ok := b.Node().NetMap().PeerByName("c"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("c never appeared in b's map")
		}
	}
	cmd := exec.Command(tsconnectBin, "--socket", tn.sockets["b"], "ping", "-c", "1", "c")
	msg, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(msg), "publishes no disco key") {
		t.Fatalf("ping of a node without direct paths: %v\n%s", err, msg)
	}
}

// catSession starts `cat` in a new session of cl (closed when the test ends) and returns
// its input and output.
func catSession(t testing.TB, cl *ssh.Client) (io.Writer, io.Reader) {
	t.Helper()
	s, err := cl.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	stdin, err := s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := s.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("cat"); err != nil {
		t.Fatal(err)
	}
	return stdin, stdout
}

// TestDerpSTUNPort: `tsconnect derp --stun-port N` answers a STUN binding request on UDP N
// of its --listen host with the asker's address.
func TestDerpSTUNPort(t *testing.T) {
	free, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := free.LocalAddr().(*net.UDPAddr).Port
	free.Close()
	startRelay(t, freePort(t), "--stun-port", strconv.Itoa(port))
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	tx, req, err := derpws.STUNRequest()
	if err != nil {
		t.Fatal(err)
	}
	srv := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	if _, err := uc.WriteToUDPAddrPort(req, srv); err != nil {
		t.Fatal(err)
	}
	uc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	n, err := uc.Read(buf)
	if err != nil {
		t.Fatalf("no STUN answer from the relay: %v", err)
	}
	got, ok := derpws.ParseSTUNResponse(buf[:n], tx)
	if want := uc.LocalAddr().(*net.UDPAddr).AddrPort(); !ok || got != want {
		t.Fatalf("the relay's STUN says %v (ok %v), want %v", got, ok, want)
	}
}

// TestCLIUpUDPPort: `tsconnect up --udp-port 0 --udp-addr 127.0.0.1` runs an agent with
// direct paths: `tsconnect ping` from it reaches a direct pong, and --udp-addr alone is refused.
func TestCLIUpUDPPort(t *testing.T) {
	stunPC, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tn := startTestNet(t, func(c *control.Config) { c.STUN = stunPC }, ownNodesPolicy)
	tn.startDirectAgent("a")
	sock := filepath.Join(t.TempDir(), "p.sock")
	startProc(t, "--socket", sock, "up", "--hostname", "p", "--login-server", tn.url, "--state", t.TempDir(),
		"--auth-key", tn.authKey(control.AuthKeyOptions{}), "--udp-port", "0", "--udp-addr", "127.0.0.1")
	waitStatus(t, sock, "a")
	var out string
	deadline := time.Now().Add(20 * time.Second)
	for { // until a has p's endpoints too (p's first map may come before them)
		o, _ := exec.Command(tsconnectBin, "--socket", sock, "ping", "-c", "3", "a").CombinedOutput()
		out = string(o)
		if regexp.MustCompile(`(?m)^pong from a \(100\.[0-9.]+\) via direct 127\.0\.0\.1:[0-9]+ in [0-9.]+ms$`).MatchString(out) || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(out, "via direct 127.0.0.1:") {
		t.Fatalf("ping from the CLI agent never went direct:\n%s", out)
	}
	cmd := exec.Command(tsconnectBin, "up", "--login-server", tn.url, "--udp-addr", "127.0.0.1")
	if msg, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(msg), "--udp-addr needs --udp-port") {
		t.Fatalf("--udp-addr without --udp-port: %v\n%s", err, msg)
	}
}
