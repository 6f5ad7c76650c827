package e2e

import (
	"net/netip"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"tsconnect/agent"
	"tsconnect/control"
	"tsconnect/internal/eventually"
	"tsconnect/internal/metrics/metricstest"
	"tsconnect/key"
	"tsconnect/magicbind"
)

// labHost is where a NAT case puts an agent: a namespace and its address there.
type labHost struct {
	ns   string
	addr netip.Addr
}

// startLabAgent runs an SSH-serving agent whose direct-path socket is in h's namespace,
// publishing h's address (control and the relay stay on the host's loopback).
func (tn *testNet) startLabAgent(t testing.TB, lab *netLab, name string, h labHost) *agent.Agent {
	t.Helper()
	uc := lab.listenUDP(h.ns, netip.AddrPortFrom(netip.IPv4Unspecified(), 0))
	a := tn.startAgentWith(name, tn.authKey(control.AuthKeyOptions{}), func(c *agent.Config) {
		c.UDPConn = uc
		c.Interfaces = func() ([]netip.Addr, error) { return []netip.Addr{h.addr}, nil }
	})
	t.Cleanup(func() { a.Close() })
	return a
}

// natPair is two agents of a NAT case with an open ticking SSH session from a to b.
type natPair struct {
	t      testing.TB
	tn     *testNet
	a, b   *agent.Agent
	an, bn string
	ka, kb key.Public
	tk     *ticker
	start  time.Time    // when the session started opening (the pair's first traffic)
	upAt   atomic.Int64 // unix nanos when both first went direct, 0 before
}

func startNATPair(t testing.TB, tn *testNet, lab *netLab, name string, ha, hb labHost) *natPair {
	t.Helper()
	p := &natPair{t: t, tn: tn, an: name + "-a", bn: name + "-b"}
	p.a = tn.startLabAgent(t, lab, p.an, ha)
	p.b = tn.startLabAgent(t, lab, p.bn, hb)
	waitPeerPublished(t, p.a, p.bn)
	waitPeerPublished(t, p.b, p.an)
	p.ka, p.kb = p.a.Node().NodeKey(), p.b.Node().NodeKey()
	p.start = time.Now()
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() { // when the path first goes direct, however early
		for {
			if p.direct() {
				p.upAt.Store(time.Now().UnixNano())
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	p.tk = startTicker(t, sshDial(t, p.a.Node(), p.bn))
	if _, ok := p.tk.waitLine(p.start, 10*time.Second); !ok {
		t.Fatal("the session prints nothing")
	}
	return p
}

func (p *natPair) direct() bool {
	return p.a.Paths().Path(p.kb).Direct.IsValid() && p.b.Paths().Path(p.ka).Direct.IsValid()
}

func (p *natPair) relayed() bool {
	return !p.a.Paths().Path(p.kb).Direct.IsValid() && !p.b.Paths().Path(p.ka).Direct.IsValid()
}

// relayPackets is what the relay took from the pair so far.
func (p *natPair) relayPackets() uint64 {
	return p.tn.srv.RelayStats(p.ka).PacketsIn + p.tn.srv.RelayStats(p.kb).PacketsIn
}

// checkTicking asserts the session goes on for d: lines keep coming, none more than 3 s
// apart; it returns how many relay packets the pair sent meanwhile.
func (p *natPair) checkTicking(d time.Duration) uint64 {
	p.t.Helper()
	before := p.relayPackets()
	p.tk.resetGap()
	lines := p.tk.lines.Load()
	time.Sleep(d)
	if n := p.tk.lines.Load() - lines; n < int64(d/(200*time.Millisecond)) {
		p.t.Fatalf("the session printed %d lines in %v", n, d)
	}
	if g := p.tk.maxGap(); g > 3*time.Second { // ticks every 200 ms: a stall, not a loaded machine
		p.t.Fatalf("the session stalled %v", g)
	}
	return p.relayPackets() - before
}

// checkReported waits for b's report to control (what the console's Sessions page shows)
// of the login from a to carry the path b's traffic to a takes: direct to want, or, want
// invalid, relayed through the embedded region.
func (p *natPair) checkReported(want netip.Addr) {
	p.t.Helper()
	pa, ok := p.b.Node().NetMap().PeerByName(p.an)
	if !ok || len(pa.Addresses) == 0 {
		p.t.Fatalf("%s has no map entry for %s", p.bn, p.an)
	}
	eventually.True(p.t, p.bn+"'s report of the login's path", func() bool {
		for _, l := range p.tn.srv.LiveSSHLogins() {
			if l.Login.Remote.Addr() != pa.Addresses[0].Addr() || l.Login.Path == nil {
				continue
			}
			lp := l.Login.Path
			if want.IsValid() {
				return lp.Direct.Addr() == want && lp.RTTMillis > 0
			}
			return !lp.Direct.IsValid() && lp.RegionCode == control.EmbeddedRegionCode
		}
		return false
	})
}

// checkPing runs `tsconnect ping` from a to b: with want valid it must end on a direct
// pong from want's address; invalid, every pong comes through the relay.
func (p *natPair) checkPing(want netip.Addr) string {
	p.t.Helper()
	out := cli(p.t, "--socket", p.tn.sockets[p.an], "ping", "-c", "5", p.bn)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	relay := regexp.MustCompile(`^pong from ` + p.bn + ` \(100\.[0-9.]+\) via DERP\(tsc\) in [0-9.]+ms$`)
	if want.IsValid() {
		direct := regexp.MustCompile(`^pong from ` + p.bn + ` \(100\.[0-9.]+\) via direct ` + regexp.QuoteMeta(want.String()) + `:[0-9]+ in [0-9.]+ms$`)
		if !direct.MatchString(lines[len(lines)-1]) {
			p.t.Fatalf("ping did not end on a direct pong from %v:\n%s", want, out)
		}
		st := cli(p.t, "--socket", p.tn.sockets[p.an], "status")
		if !regexp.MustCompile(p.bn + ` .*direct ` + regexp.QuoteMeta(want.String()) + `:[0-9]+ [0-9.]+ms`).MatchString(st) {
			p.t.Fatalf("status does not show %s direct via %v:\n%s", p.bn, want, st)
		}
		return out
	}
	if lines[len(lines)-1] != "no direct path: traffic goes through the relay" {
		p.t.Fatalf("ping found a direct path:\n%s", out)
	}
	for _, l := range lines[:len(lines)-1] {
		if !relay.MatchString(l) {
			p.t.Fatalf("ping printed %q, not a relayed pong", l)
		}
	}
	st := cli(p.t, "--socket", p.tn.sockets[p.an], "status")
	if !regexp.MustCompile(p.bn + ` .*relay DERP\(tsc\)`).MatchString(st) {
		p.t.Fatalf("status does not show %s relayed:\n%s", p.bn, st)
	}
	return out
}

// TestNATTraversal: pairs of agents whose direct-path sockets sit in network namespaces
// behind routers the test builds (veth pairs, nft masquerading, a firewall dropping
// unsolicited packets from the wan), with control's relay answering STUN on the wan: on
// one LAN, one behind a NAT, both behind endpoint-independent NATs (hole punching through
// call-me-maybe) they go direct, with the endpoint `tsconnect ping` and status name and no
// data through the relay; behind symmetric NATs they stay on the relay; and a direct path
// that dies mid-session falls back to the relay within 2 s and comes back when it heals,
// an open SSH session ticking throughout.
func TestNATTraversal(t *testing.T) {
	lab := newNetLab(t)
	stunPC := lab.listenUDP(lab.wan, netip.AddrPortFrom(labSTUN, 0))
	tn := startTestNet(t, func(c *control.Config) { c.STUN, c.STUNAddr = stunPC, labSTUN }, ownNodesPolicy)
	expectDirect := func(t *testing.T, p *natPair, aToB, bToA netip.Addr) {
		eventually.True(t, "a direct path both ways", func() bool { return p.upAt.Load() != 0 })
		d := time.Unix(0, p.upAt.Load()).Sub(p.start)
		if got := p.a.Paths().Path(p.kb).Direct.Addr(); got != aToB {
			t.Fatalf("%s goes direct to %s via %v, want %v", p.an, p.bn, got, aToB)
		}
		if got := p.b.Paths().Path(p.ka).Direct.Addr(); got != bToA {
			t.Fatalf("%s goes direct to %s via %v, want %v", p.bn, p.an, got, bToA)
		}
		t.Logf("direct %v after the session started opening: %s→%s via %v, back via %v (RTT %v)", d, p.an, p.bn,
			p.a.Paths().Path(p.kb).Direct, p.b.Paths().Path(p.ka).Direct, p.a.Paths().Path(p.kb).RTT)
		p.checkReported(bToA)
		ping := p.checkPing(aToB)
		t.Logf("tsconnect ping:\n%s", ping)
		if r := p.checkTicking(2 * time.Second); r != 0 {
			t.Fatalf("the relay carried %d packets of the direct session in 2 s", r)
		}
		m := metricstest.Of(t, p.a.Collector())
		if m[`tsconnect_agent_path_packets_total{direction="sent",path="direct"}`] < 1 || m[`tsconnect_agent_path_packets_total{direction="received",path="direct"}`] < 1 {
			t.Fatalf("the agent's metrics count no direct packets: %v", m)
		}
	}

	t.Run("one LAN", func(t *testing.T) {
		hs, addrs, _ := lab.site("lan", natEIM, "lan-a", "lan-b")
		p := startNATPair(t, tn, lab, "lan", labHost{hs[0], addrs[0]}, labHost{hs[1], addrs[1]})
		expectDirect(t, p, addrs[1], addrs[0])
	})
	t.Run("one behind NAT", func(t *testing.T) {
		pa, aAddr := lab.public("one-a")
		hs, addrs, router := lab.site("one", natEIM, "one-b")
		p := startNATPair(t, tn, lab, "one", labHost{pa, aAddr}, labHost{hs[0], addrs[0]})
		expectDirect(t, p, lab.wanAddr(router), aAddr)
	})
	t.Run("both behind EIM NAT", func(t *testing.T) {
		ha, aa, ra := lab.site("eima", natEIM, "eim-a")
		hb, ab, rb := lab.site("eimb", natEIM, "eim-b")
		p := startNATPair(t, tn, lab, "eim", labHost{ha[0], aa[0]}, labHost{hb[0], ab[0]})
		expectDirect(t, p, lab.wanAddr(rb), lab.wanAddr(ra))

		// The direct path dies: a's router forwards no UDP. Both sides are back on the
		// relay within 2 s and the session goes on; healed, the path comes back.
		undo := lab.dropUDP(ra)
		died := time.Now()
		fallback := eventually.Took(t, "fallback to the relay both ways", p.relayed)
		resumed, ok := p.tk.waitLine(died.Add(fallback), 5*time.Second)
		if !ok {
			t.Fatal("the session printed nothing within 5 s of the fallback")
		}
		if r := p.checkTicking(2 * time.Second); r == 0 {
			t.Fatal("on the relay, the session sent nothing through it")
		}
		p.checkPing(netip.Addr{})
		undo()
		healed := time.Now()
		back := eventually.Took(t, "back to direct both ways", p.direct)
		if got := p.a.Paths().Path(p.kb).Direct.Addr(); got != lab.wanAddr(rb) {
			t.Fatalf("back direct via %v, want %v", got, lab.wanAddr(rb))
		}
		if r := p.checkTicking(2 * time.Second); r != 0 {
			t.Fatalf("back direct, the relay carried %d packets in 2 s", r)
		}
		p.checkPing(lab.wanAddr(rb))
		t.Logf("path died: both on the relay after %v, the session's next line %v after that; healed: direct again after %v (healed at %s)",
			fallback, resumed, back, healed.Format(time.TimeOnly))
	})
	t.Run("symmetric NAT", func(t *testing.T) {
		ha, aa, _ := lab.site("syma", natSymmetric, "sym-a")
		hb, ab, _ := lab.site("symb", natSymmetric, "sym-b")
		p := startNATPair(t, tn, lab, "sym", labHost{ha[0], aa[0]}, labHost{hb[0], ab[0]})
		until := time.Now().Add(3 * magicbind.ProbeInterval)
		for time.Now().Before(until) {
			if !p.relayed() {
				t.Fatalf("a direct path behind symmetric NATs: %v / %v", p.a.Paths().Path(p.kb).Direct, p.b.Paths().Path(p.ka).Direct)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("tsconnect ping:\n%s", p.checkPing(netip.Addr{}))
		p.checkReported(netip.Addr{})
		if r := p.checkTicking(2 * time.Second); r == 0 {
			t.Fatal("the relayed session sent nothing through the relay")
		}
		t.Logf("symmetric NATs: on the relay for %v of probing", 3*magicbind.ProbeInterval)
	})
}
