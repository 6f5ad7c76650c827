package e2e

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"tsconnect/control"
	"tsconnect/internal/eventually"
)

// natBenchSeq keeps the namespaces of each run of a sub-benchmark apart.
var natBenchSeq atomic.Int32

// BenchmarkNATPaths measures two agents whose direct-path sockets sit in network namespaces
// behind NATs the benchmark builds (as TestNATTraversal): bulk SSH throughput (32 MiB of
// `head -c` a round) and a byte's echo through `cat` (500 round trips, p50 and p99), direct
// (both behind endpoint-independent NATs) against relayed (both behind symmetric NATs, so
// the same namespaces, NATs and probing, but the relay on the host's loopback carries it);
// and the time from a session's first traffic to direct, from a path's death to the relay,
// and from its healing back to direct (each b.N times). Run once:
// go test ./e2e/ -run - -bench NATPaths -benchtime 1x
func BenchmarkNATPaths(b *testing.B) {
	lab := newNetLab(b)
	stunPC := lab.listenUDP(lab.wan, netip.AddrPortFrom(labSTUN, 0))
	tn := startTestNet(b, func(c *control.Config) { c.STUN, c.STUNAddr = stunPC, labSTUN }, ownNodesPolicy)
	pair := func(b *testing.B, mode natMode) *natPair {
		n := natBenchSeq.Add(1)
		ha, aa, _ := lab.site(fmt.Sprintf("b%da", n), mode, fmt.Sprintf("b%d-a", n))
		hb, ab, _ := lab.site(fmt.Sprintf("b%db", n), mode, fmt.Sprintf("b%d-b", n))
		p := startNATPair(b, tn, lab, fmt.Sprintf("nb%d", n), labHost{ha[0], aa[0]}, labHost{hb[0], ab[0]})
		if mode == natEIM {
			eventually.True(b, "a direct path both ways", func() bool { return p.upAt.Load() != 0 })
		} else if !p.relayed() {
			b.Fatal("a direct path behind symmetric NATs")
		}
		return p
	}
	for _, path := range []struct {
		name string
		mode natMode
	}{{"direct", natEIM}, {"relayed", natSymmetric}} {
		b.Run("bulk/"+path.name, func(b *testing.B) {
			p := pair(b, path.mode)
			benchBulk(b, sshDial(b, p.a.Node(), p.bn))
			p.checkPath(path.mode == natEIM)
		})
		b.Run("echo/"+path.name, func(b *testing.B) {
			p := pair(b, path.mode)
			in, out := catSession(b, sshDial(b, p.a.Node(), p.bn))
			const trips = 500
			rtts := make([]time.Duration, 0, trips*b.N)
			buf := []byte{'x'}
			b.ResetTimer()
			for i := 0; i < trips*b.N; i++ {
				t0 := time.Now()
				if _, err := in.Write(buf); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(out, buf); err != nil {
					b.Fatal(err)
				}
				rtts = append(rtts, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(rtts)
			b.ReportMetric(float64(rtts[len(rtts)/2].Microseconds())/1000, "ms-p50")
			b.ReportMetric(float64(rtts[len(rtts)*99/100].Microseconds())/1000, "ms-p99")
			b.ReportMetric(0, "ns/op")
			p.checkPath(path.mode == natEIM)
		})
	}
	b.Run("upgrade-fallback-heal", func(b *testing.B) {
		var up, down, back time.Duration
		for i := 0; i < b.N; i++ {
			n := natBenchSeq.Add(1)
			ha, aa, ra := lab.site(fmt.Sprintf("b%da", n), natEIM, fmt.Sprintf("b%d-a", n))
			hb, ab, _ := lab.site(fmt.Sprintf("b%db", n), natEIM, fmt.Sprintf("b%d-b", n))
			p := startNATPair(b, tn, lab, fmt.Sprintf("nb%d", n), labHost{ha[0], aa[0]}, labHost{hb[0], ab[0]})
			eventually.True(b, "a direct path both ways", func() bool { return p.upAt.Load() != 0 })
			up += time.Unix(0, p.upAt.Load()).Sub(p.start)
			undo := lab.dropUDP(ra)
			down += eventually.Took(b, "fallback to the relay both ways", p.relayed)
			undo()
			back += eventually.Took(b, "back to direct both ways", p.direct)
		}
		n := float64(b.N)
		b.ReportMetric(up.Seconds()/n, "s-to-direct")
		b.ReportMetric(down.Seconds()/n, "s-fallback")
		b.ReportMetric(back.Seconds()/n, "s-back-direct")
		b.ReportMetric(0, "ns/op")
	})
}

// checkPath fails the benchmark when the pair's path is not (direct) or is (!direct) direct
// both ways after a measurement, so a figure is never of the other path.
func (p *natPair) checkPath(direct bool) {
	p.t.Helper()
	if direct && !p.direct() || !direct && !p.relayed() {
		p.t.Fatalf("after the measurement the pair is not %s both ways", map[bool]string{true: "direct", false: "relayed"}[direct])
	}
}
