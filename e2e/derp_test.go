package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"tsconnect/control"
	"tsconnect/derpws"
	"tsconnect/internal/eventually"
	"tsconnect/internal/httpget"
	"tsconnect/internal/metrics/metricstest"
	"tsconnect/key"
	"tsconnect/node"
)

// startRelay runs `tsconnect derp --dev` on addr and waits until it answers.
func startRelay(t testing.TB, addr string, extra ...string) *proc {
	t.Helper()
	p := startProc(t, append([]string{"derp", "--dev", "--listen", addr}, extra...)...)
	waitHTTP(t, "http://"+addr+"/derp/probe")
	return p
}

// newTestNetWithRelay is a testNet whose DERP map names only the standalone relay at relayAddr
// (control's embedded relay off).
func newTestNetWithRelay(t testing.TB, relayAddr string) *testNet {
	t.Helper()
	return newTestNetWithMap(t, standaloneRelayMap(relayAddr))
}

// standaloneRelayMap is a DERP map of one region, 7, served by the relay at relayAddr.
func standaloneRelayMap(relayAddr string) *derpws.Map {
	host, port, _ := net.SplitHostPort(relayAddr)
	portN, _ := strconv.Atoi(port)
	return &derpws.Map{Regions: map[int]*derpws.Region{7: {RegionID: 7, RegionCode: "sa", RegionName: "standalone",
		Nodes: []*derpws.Node{{Name: "7a", RegionID: 7, HostName: host, DERPPort: portN, STUNPort: -1, InsecureForTests: true}}}}}
}

// newTestNetWithMap is a testNet whose nodes get only the relays of m (embedded relay off),
// with a policy that lets the test's user SSH to their own nodes.
func newTestNetWithMap(t testing.TB, m *derpws.Map) *testNet {
	t.Helper()
	// The test logs in as whoever runs it (root in CI): accept that without check mode.
	return startTestNet(t, func(c *control.Config) { c.DERPMap, c.EmbeddedDERP = m, false }, relayTestPolicy)
}

const relayTestPolicy = `{
  "acls": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*"]}],
  "ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["root", "autogroup:nonroot"]}],
}`

// killAt is a reader that calls kill once, after limit bytes went through it.
type killAt struct {
	r     io.Reader
	n     int
	limit int
	once  sync.Once
	kill  func()
}

func (k *killAt) Read(p []byte) (int, error) {
	n, err := k.r.Read(p)
	k.n += n
	if k.n >= k.limit {
		k.once.Do(func() { go k.kill() })
	}
	return n, err
}

// TestRelayKilledDuringCat: the only relay is SIGKILLed and restarted on the same port while
// an SSH session streams data through `cat`; the session continues and every byte comes back
// intact (SSH's MAC would catch any corruption; the hash checks nothing was lost or repeated).
func TestRelayKilledDuringCat(t *testing.T) {
	addr := freePort(t)
	keyFile := filepath.Join(t.TempDir(), "relay.key")
	relay := startRelay(t, addr, "--key-file", keyFile)
	tn := newTestNetWithRelay(t, addr)
	tn.startAgent("server")
	client := tn.startNode("laptop")
	cl := sshDial(t, client, "server")

	const total = 16 << 20
	data := make([]byte, total)
	rand.NewChaCha8([32]byte{7}).Read(data)
	restarted := make(chan struct{})
	in := &killAt{r: bytes.NewReader(data), limit: total / 4, kill: func() {
		defer close(restarted)
		relay.cmd.Process.Signal(syscall.SIGKILL)
		relay.cmd.Wait()
		time.Sleep(300 * time.Millisecond) // the relay is down for a while
		startRelay(t, addr, "--key-file", keyFile)
	}}
	out, code := run(t, cl, "cat", in)
	<-restarted
	if code != 0 {
		t.Fatalf("cat exited %d", code)
	}
	if len(out) != total || sha256.Sum256(out) != sha256.Sum256(data) {
		t.Fatalf("cat returned %d bytes (want %d), equal=%v", len(out), total, bytes.Equal(out, data))
	}
	// The same connection still works after the restart.
	if out, code := run(t, cl, "echo after", nil); string(out) != "after\n" || code != 0 {
		t.Fatalf("after restart: %q exit %d", out, code)
	}
}

// TestMeshedRelaysCLI: two `tsconnect derp` processes of one region, meshed with a shared key;
// a client on each reaches the other with its source key intact, and the metrics show the
// forwarding. A client without the mesh key cannot watch the relay's clients.
func TestMeshedRelaysCLI(t *testing.T) {
	dir := t.TempDir()
	meshKey := filepath.Join(dir, "mesh.key")
	os.WriteFile(meshKey, []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	a, b := freePort(t), freePort(t)
	ma, mb := freePort(t), freePort(t)
	startRelay(t, a, "--mesh-key", meshKey, "--mesh-with", b, "--metrics-listen", ma)
	startRelay(t, b, "--mesh-key", meshKey, "--mesh-with", "http://"+a, "--metrics-listen", mb)

	x := derpws.NewClient(key.NewPrivate(), "http://"+a+"/derp", nil)
	y := derpws.NewClient(key.NewPrivate(), "http://"+b+"/derp", &derpws.ClientOptions{UseWebSocket: true})
	defer x.Close()
	defer y.Close()
	recvd := make(chan string, 100)
	go func() {
		for {
			src, pkt, err := y.Recv()
			if err != nil {
				return
			}
			if src == x.PublicKey() {
				recvd <- string(pkt)
			}
		}
	}()
	// x sends until y has joined b and b's presence reached a: until then a answers
	// "not here" and the packet is dropped, as DERP does.
	deadline := time.Now().Add(30 * time.Second)
	var got string
	for got == "" && time.Now().Before(deadline) {
		x.Send(y.PublicKey(), []byte("across the mesh"))
		select {
		case got = <-recvd:
		case <-time.After(50 * time.Millisecond):
		}
	}
	if got != "across the mesh" {
		t.Fatalf("y got %q from x", got)
	}
	// The metrics, scraped from each relay's metrics listener with the Prometheus text parser.
	if m := metricstest.Scrape(t, "http://"+ma+"/metrics"); m["derp_packets_forwarded_out_total"] == 0 || !m.Has("go_goroutines") {
		t.Errorf("relay a metrics show no forwarding: %v", m)
	}
	if m := metricstest.Scrape(t, "http://"+mb+"/metrics"); m["derp_packets_forwarded_in_total"] == 0 || m["derp_clients"] != 1 {
		t.Errorf("relay b metrics: %v", m)
	}
	// The public listener has health endpoints and no metrics.
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/debug/metrics": 404, "/metrics": 404} {
		resp, err := http.Get("http://" + a + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s on the relay's public listener: %s, want %d", path, resp.Status, want)
		}
	}
}

// inProcessRelay serves a derpws relay on loopback; with probes false its /derp/probe
// answers 503, so nodes that probe it natively leave its region out.
func inProcessRelay(t *testing.T, probes bool) (*derpws.Server, *derpws.Node, string) {
	s := derpws.NewServer(key.NewPrivate(), &derpws.ServerOptions{Logf: t.Logf})
	mux := http.NewServeMux()
	mux.Handle("/derp", s)
	mux.HandleFunc("/derp/", func(w http.ResponseWriter, r *http.Request) {
		if !probes && strings.HasSuffix(r.URL.Path, "/probe") {
			http.Error(w, "this relay answers no probes", http.StatusServiceUnavailable)
			return
		}
		s.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	t.Cleanup(func() {
		s.Close()
		hs.Close()
	})
	port := ln.Addr().(*net.TCPAddr).Port
	return s, &derpws.Node{HostName: "127.0.0.1", DERPPort: port, STUNPort: -1, InsecureForTests: true}, "http://" + ln.Addr().String()
}

func homeCount(t *testing.T, s *derpws.Server) string {
	return strconv.FormatFloat(metricstest.Of(t, s.Collector())["derp_clients_home"], 'f', -1, 64)
}

// TestRegionsByLatency: nodes move home to the region whose /derp/probe answers fastest
// (leaving out regions that do not answer), and an SSH session crosses regions: the laptop,
// homed in region 2, reaches the server homed in region 3 through region 3's relay. Both
// move off region 1, the home before any measurement. The measurements are deterministic,
// not raced: only region 3 answers the server's probes, and the laptop's probes (through
// its HTTPGet seam) find region 2 answering at once and regions 1 and 3 after probeDelay.
func TestRegionsByLatency(t *testing.T) {
	const probeDelay = 500 * time.Millisecond
	r1, n1, r1url := inProcessRelay(t, false)
	r2, n2, r2url := inProcessRelay(t, false)
	r3, n3, r3url := inProcessRelay(t, true)
	n1.Name, n1.RegionID, n2.Name, n2.RegionID, n3.Name, n3.RegionID = "1a", 1, "2a", 2, "3a", 3
	m := &derpws.Map{Regions: map[int]*derpws.Region{
		1: {RegionID: 1, RegionCode: "one", Nodes: []*derpws.Node{n1}},
		2: {RegionID: 2, RegionCode: "two", Nodes: []*derpws.Node{n2}},
		3: {RegionID: 3, RegionCode: "three", Nodes: []*derpws.Node{n3}},
	}}
	tn := newTestNetWithMap(t, m)
	tn.startAgent("server")
	laptop, err := node.New(node.Options{
		ControlURL: tn.url, AuthKey: tn.authKey(control.AuthKeyOptions{Ephemeral: true}),
		Hostname: "laptop", Logf: prefixed(t, "laptop: "),
		HTTPGet: func(ctx context.Context, u string) ([]byte, error) {
			switch u {
			case r2url + "/derp/probe":
				return nil, nil
			case r1url + "/derp/probe", r3url + "/derp/probe":
				select {
				case <-time.After(probeDelay):
					return nil, nil
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			return httpget.Get(ctx, u)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := laptop.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { laptop.Close() })

	eventually.True(t, "the laptop homed on region 2 and the server on region 3", func() bool {
		return homeCount(t, r1) == "0" && homeCount(t, r2) == "1" && homeCount(t, r3) == "1"
	})
	eventually.True(t, "the laptop's map to show the server homed in region 3", func() bool {
		p, ok := laptop.NetMap().PeerByName("server")
		return ok && p.HomeDERP == 3
	})
	cl := sshDial(t, laptop, "server")
	if out, code := run(t, cl, "echo across regions", nil); string(out) != "across regions\n" || code != 0 {
		t.Fatalf("got %q exit %d", out, code)
	}
	if got := r3.Stats(laptop.NodeKey()); got.PacketsIn == 0 {
		t.Errorf("the laptop sent nothing through region 3: %+v", got)
	}
}

// TestCLIStandaloneRelayVerified: control runs with --derp-map naming a standalone
// `tsconnect derp` and --no-embedded-derp; the relay admits only node keys control vouches for
// (--verify-clients-url, authenticated with the --relay-secret shared secret). An SSH session
// runs through it, and a key control does not know is refused.
func TestCLIStandaloneRelayVerified(t *testing.T) {
	dir, adir, tmp := t.TempDir(), t.TempDir(), t.TempDir()
	sock := filepath.Join(adir, "agent.sock")
	ctrlAddr, relayAddr := freePort(t), freePort(t)
	url := "http://" + ctrlAddr
	secret := filepath.Join(tmp, "relay.secret")
	os.WriteFile(secret, []byte("s3cret-shared-with-relays\n"), 0o600)
	host, port, _ := net.SplitHostPort(relayAddr)
	mapFile := filepath.Join(tmp, "derpmap.json")
	os.WriteFile(mapFile, []byte(`{"Regions": {"5": {"RegionID": 5, "RegionCode": "sa", "RegionName": "standalone",
		"Nodes": [{"Name": "5a", "RegionID": 5, "HostName": "`+host+`", "DERPPort": `+port+`, "STUNPort": -1, "InsecureForTests": true}]}}}`), 0o600)

	startRelay(t, relayAddr, "--verify-clients-url", url+control.RelayVerifyPath, "--verify-clients-secret", secret)
	startProc(t, "control", "--listen", ctrlAddr, "--state", dir, "--derp-map", mapFile, "--no-embedded-derp", "--relay-secret", secret)
	waitHTTP(t, url+"/")
	cli(t, "users", "create", "--state", dir, "alice@example.com")
	cliOwnNodesPolicy(t, dir)
	agentKey := lastLine(cli(t, "keys", "create", "--state", dir, "--user", "alice@example.com"))
	startProc(t, "--socket", sock, "up", "--ssh", "--hostname", "server", "--login-server", url, "--auth-key", agentKey, "--state", adir)
	waitStatus(t, sock, "server")

	clientKey := lastLine(cli(t, "keys", "create", "--state", dir, "--user", "alice@example.com", "--ephemeral"))
	n := startNodeAt(t, url, clientKey, "laptop")
	if dm := n.NetMap().DERPMap; len(dm.Regions) != 1 || dm.Regions[5] == nil {
		t.Fatalf("DERP map regions %v, want only the standalone relay's region 5", dm.Regions)
	}
	cl := sshDial(t, n, "server")
	if out, code := run(t, cl, "echo via the standalone relay", nil); string(out) != "via the standalone relay\n" || code != 0 {
		t.Fatalf("got %q exit %d", out, code)
	}

	health := make(chan string, 16)
	stranger := derpws.NewClient(key.NewPrivate(), "http://"+relayAddr+"/derp", &derpws.ClientOptions{
		OnHealth: func(s string) {
			select {
			case health <- s:
			default:
			}
		},
	})
	defer stranger.Close()
	stranger.Start()
	select {
	case h := <-health:
		if !strings.Contains(h, "does not admit") {
			t.Fatalf("stranger's health %q, want a refusal", h)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a key unknown to control was not refused")
	}
}
