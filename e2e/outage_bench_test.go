package e2e

import (
	"fmt"
	"testing"
	"time"

	"tsconnect/control"
)

// outages are the relay outages BenchmarkOutageResume measures, in a row on one session.
var outages = []time.Duration{1 * time.Second, 4 * time.Second, 10 * time.Second, 30 * time.Second}

// BenchmarkOutageResume prints how long after its relay comes back an open SSH session's
// output resumes (native node → relay → agent), after outages of 1, 4, 10 and 30 s in a row:
// for the standalone relay (`tsconnect derp`, SIGKILLed and restarted on the same address and
// key) and for control's embedded relay (control stopped and started again on the same
// address and state). The goal is under 2 s (issue 14). `make bench` prints it.
func BenchmarkOutageResume(b *testing.B) {
	b.Run("standalone", func(b *testing.B) {
		addr := freePort(b)
		down, up := standaloneOutage(b, addr)
		tn := newTestNetWithRelay(b, addr)
		measureOutages(b, tn, down, up)
	})
	b.Run("embedded", func(b *testing.B) {
		tn := newTestNet(b)
		measureOutages(b, tn, tn.cs.Stop, tn.restart)
	})
}

// measureOutages opens a ticking session from a client node to an agent of tn and reports the
// resume time after each of outages.
func measureOutages(b *testing.B, tn *testNet, down, up func()) {
	tn.startAgent("server")
	// Not ephemeral: control's own outage must not make it forget the client.
	client := tn.startNodeKey("laptop", tn.authKey(control.AuthKeyOptions{}))
	tk := startTicker(b, sshDial(b, client, "server"))
	for _, o := range outages {
		b.Run(fmt.Sprintf("outage=%v", o), func(b *testing.B) {
			d := outageResume(b, tk, o, 60*time.Second, down, up)
			b.ReportMetric(d.Seconds(), "s-to-resume")
		})
	}
}
