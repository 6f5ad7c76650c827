package e2e

import (
	"net"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"tsconnect/derpws"
)

// twoRegionMap is a DERP map of regions 1 and 2, served by standalone relays at addr1, addr2.
func twoRegionMap(addr1, addr2 string) *derpws.Map {
	m := &derpws.Map{Regions: map[int]*derpws.Region{}}
	for id, addr := range map[int]string{1: addr1, 2: addr2} {
		host, port, _ := net.SplitHostPort(addr)
		portN, _ := strconv.Atoi(port)
		m.Regions[id] = &derpws.Region{RegionID: id, RegionCode: "r" + strconv.Itoa(id), RegionName: "region " + strconv.Itoa(id),
			Nodes: []*derpws.Node{{Name: strconv.Itoa(id) + "a", RegionID: id, HostName: host, DERPPort: portN, STUNPort: -1, InsecureForTests: true}}}
	}
	return m
}

// failover is the measure of one home-relay failure: how long after the kill the client's
// map showed the agent's new home, how long the open session's output stalled (0 if it
// never did), and how long until a new SSH login ran a command.
type failover struct {
	newHome, resume, newLogin time.Duration
}

// homeFailover builds two regions whose relays are `tsconnect derp` processes, with only
// region 1's relay up when an agent and a client node join (so both are homed there), then
// starts region 2's, opens a ticking session, SIGKILLs region 1's relay and measures the
// failover to region 2; it fails t if any step takes over limit.
func homeFailover(t testing.TB, limit time.Duration) failover {
	addr1, addr2 := freePort(t), freePort(t)
	relay1 := startRelay(t, addr1, "--key-file", filepath.Join(t.TempDir(), "relay1.key"))
	tn := newTestNetWithMap(t, twoRegionMap(addr1, addr2))
	ag := tn.startAgent("server")
	client := tn.startNode("laptop")
	startRelay(t, addr2)
	if h, c := ag.Node().HomeRegion(), client.HomeRegion(); h != 1 || c != 1 {
		t.Fatalf("homes: agent %d, client %d; want both in region 1 (the only one up)", h, c)
	}
	cl := sshDial(t, client, "server")
	tk := startTicker(t, cl)
	if _, ok := tk.waitLine(time.Now(), 5*time.Second); !ok {
		t.Fatal("the session prints nothing")
	}

	relay1.cmd.Process.Signal(syscall.SIGKILL)
	relay1.cmd.Wait()
	killed := time.Now()
	var f failover
	stalled := false
	for {
		now := time.Now()
		if now.Sub(killed) > limit {
			t.Fatalf("%v after region 1's relay died: new home seen %v, session stalled %v", limit, f.newHome, stalled)
		}
		last := time.Unix(0, tk.last.Load())
		if now.Sub(last) > time.Second {
			stalled = true
		} else if stalled && f.resume == 0 {
			f.resume = last.Sub(killed)
		}
		if f.newHome == 0 {
			if p, ok := client.NetMap().PeerByName("server"); ok && p.HomeDERP == 2 {
				f.newHome = now.Sub(killed)
			}
		}
		if f.newHome != 0 && (!stalled || f.resume != 0) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if h := ag.Node().HomeRegion(); h != 2 {
		t.Fatalf("agent's home region %d after the failover, want 2", h)
	}
	cl2 := sshDial(t, client, "server")
	if out, code := run(t, cl2, "echo after", nil); string(out) != "after\n" || code != 0 {
		t.Fatalf("new session after the failover: %q exit %d", out, code)
	}
	f.newLogin = time.Since(killed)
	if _, ok := tk.waitLine(time.Now(), limit); !ok {
		t.Fatal("the open session prints nothing after the failover")
	}
	return f
}

// TestHomeRelayFailover: an agent and a client homed in region 1 lose its relay for good;
// within 15 s both are homed in region 2 (the client's map shows the agent there), the open
// SSH session prints again and a new SSH login works (see BenchmarkRegionFailover).
func TestHomeRelayFailover(t *testing.T) {
	f := homeFailover(t, 15*time.Second)
	t.Logf("after the kill: new home in the map %v, session output resumed %v (0: never stalled), new login done %v",
		f.newHome.Round(time.Millisecond), f.resume.Round(time.Millisecond), f.newLogin.Round(time.Millisecond))
}

// BenchmarkRegionFailover prints how long after its home relay dies for good an agent is
// homed in another region in its peer's map, how long the open session's output took to
// resume (0: it never stalled) and when a new SSH login had run a command. `make bench` prints it.
func BenchmarkRegionFailover(b *testing.B) {
	f := homeFailover(b, 30*time.Second)
	b.ReportMetric(f.newHome.Seconds(), "s-to-new-home")
	b.ReportMetric(f.resume.Seconds(), "s-to-resume")
	b.ReportMetric(f.newLogin.Seconds(), "s-to-new-login")
}
