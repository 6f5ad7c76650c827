package e2e

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"tsconnect/agent"
	"tsconnect/control"
	"tsconnect/controlws"
	"tsconnect/internal/eventually"
)

// controlOutage stops control (the listener stays, answering 503, as a proxy in front of a
// restarting control does), runs during once a's map stream is down, starts control again
// when it has been down for down, and returns how long after control was back a's network
// map was current again (a fresh map over a new stream). It fails past limit.
func controlOutage(tb testing.TB, tn *testNet, a *agent.Agent, down, limit time.Duration, during func()) time.Duration {
	tb.Helper()
	stopped := time.Now()
	tn.cs.Stop()
	eventually.True(tb, "the agent to lose its map stream", func() bool {
		asOf, ok := a.Node().MapCurrentAsOf()
		return ok && time.Since(asOf) > 50*time.Millisecond
	})
	if during != nil {
		during()
	}
	time.Sleep(time.Until(stopped.Add(down)))
	tn.cs.Start(nil)
	tn.srv = tn.cs.Control
	back := time.Now()
	for {
		if asOf, ok := a.Node().MapCurrentAsOf(); ok && asOf.After(back) {
			return time.Since(back)
		}
		if time.Since(back) > limit {
			tb.Fatalf("control down %v, then back: the agent's map is still not current %v later", down, limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// newStandaloneRelayNet is a testNet whose only relay is `tsconnect derp` as a process, so
// the data path does not depend on control, with control's default ephemeral grace.
func newStandaloneRelayNet(t *testing.T) *testNet {
	t.Helper()
	addr := freePort(t)
	startRelay(t, addr)
	return startTestNet(t, func(c *control.Config) {
		c.DERPMap, c.EmbeddedDERP = standaloneRelayMap(addr), false
		c.EphemeralGrace = control.DefaultEphemeralGrace
	}, relayTestPolicy)
}

// TestAgentCutOffFromControl: control goes away for 4 s while the relay (standalone) stays.
// The agent keeps serving SSH under its last rules (a new OpenSSH login through the relay
// gets in during the outage); once control is back the agent is current again within the
// test's 10 s limit, as the same node (same ID, addresses and key, no second node), the
// browser-like ephemeral node is not swept, and a policy change made then reaches it
// (root's login, allowed before, is refused).
func TestAgentCutOffFromControl(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatalf("needs root to log in as root (uid %d)", os.Geteuid())
	}
	tn := newStandaloneRelayNet(t)
	client := tn.startAgent("client")
	srv := tn.startAgent("srv")
	laptop := tn.startNode("laptop") // ephemeral, as the browser's
	o := newOpenSSH(t, tn, client, "client", "srv")
	if out, stderr, code := o.ssh("root@srv", "echo before"); code != 0 || out != "before\n" {
		t.Fatalf("before the outage: exit %d, %q, stderr %q", code, out, stderr)
	}
	self := srv.Node().NetMap().Self
	laptopID := laptop.NetMap().Self.ID
	nodes := tn.nodeCount()

	took := controlOutage(t, tn, srv, 4*time.Second, 10*time.Second, func() {
		if out, stderr, code := o.ssh("root@srv", "echo during"); code != 0 || out != "during\n" {
			t.Errorf("a new login while control is down: exit %d, %q, stderr %q; want in under the last rules", code, out, stderr)
		}
	})
	t.Logf("control down 4 s: the agent's map was current again %v after control came back", took.Round(time.Millisecond))

	again := srv.Node().NetMap().Self
	if again.ID != self.ID || again.Key != self.Key || !slices.Equal(again.Addresses, self.Addresses) || again.Name != self.Name {
		t.Errorf("after the outage the agent is %+v; want the same node %+v", again, self)
	}
	ns, err := tn.srv.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range ns {
		names = append(names, n.Name)
	}
	if len(ns) != nodes || !slices.ContainsFunc(ns, func(n controlws.Node) bool { return n.ID == laptopID }) {
		t.Errorf("after the outage control has nodes %v; want the same %d, the ephemeral laptop (%d) among them", names, nodes, laptopID)
	}

	revoked := strings.Replace(relayTestPolicy, `"users": ["root", "autogroup:nonroot"]`, `"users": ["autogroup:nonroot"]`, 1)
	if _, err := tn.srv.SetPolicy(context.Background(), []byte(revoked), "e2e outage"); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, "root's login to be refused under the new policy", func() bool {
		_, _, code := o.ssh("root@srv", "true")
		return code != 0
	})
}

// BenchmarkControlReconnect measures how long after control comes back (1, 4 and 10 s
// down) an agent's map is current again. `make bench` prints it.
func BenchmarkControlReconnect(b *testing.B) {
	for _, down := range []time.Duration{time.Second, 4 * time.Second, 10 * time.Second} {
		b.Run("down="+down.String(), func(b *testing.B) {
			tn := newTestNet(b)
			a := tn.startAgent("srv")
			var worst, sum time.Duration
			for i := 0; i < b.N; i++ {
				took := controlOutage(b, tn, a, down, time.Minute, nil)
				sum += took
				worst = max(worst, took)
			}
			b.ReportMetric(float64(sum)/float64(time.Millisecond)/float64(b.N), "ms-to-current")
			b.ReportMetric(float64(worst)/float64(time.Millisecond), "ms-worst")
		})
	}
}
