package control

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// recordPolicy lets the tag:server nodes reach the recorders' port, and its ssh rule on them
// names the recorders: a recorder's recordFrom lists every server.
const recordPolicy = `{"tagOwners": {"tag:server": ["ada@example.com"], "tag:rec": ["ada@example.com"]},
	"acls": [{"action": "accept", "src": ["tag:server"], "dst": ["tag:rec:8410"]}],
	"ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["tag:server"], "users": ["root"], "recorder": ["tag:rec"]}]}`

// BenchmarkRecordFrom measures what a recorder is sent when the nodes it records for are
// many: BENCH_RECORD_NODES (default 10,000) recorded servers join, then a recorder, whose
// first (full) map's bytes it reports; then each iteration joins one more server and waits
// for the recorder's message about it, reporting the bytes the recorder was sent per join.
// In-process as BenchmarkJoinSparse (streams whose transport only counts bytes).
func BenchmarkRecordFrom(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("BENCH_RECORD_NODES")); err == nil && v > 0 {
		n = v
	}
	sb := newPolicyBench(b, recordPolicy)
	recKey, _, err := sb.s.CreateAuthKey(context.Background(), AuthKeyOptions{Reusable: true, Tags: []string{"tag:rec"}})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	for i := range n {
		sb.join(true, fmt.Sprint("s", i))
	}
	b.Logf("%d recorded nodes joined in %v", n, time.Since(t0).Round(time.Millisecond))
	var sent, writes atomic.Int64
	sb.joinKey(recKey, "rec", &sent, &writes)
	full := sent.Load()
	fmt.Printf("recorder's full map with %d recorded nodes: %d bytes\n", n, full)
	b.ReportMetric(float64(full), "bytes-full-map")
	sb.s.flushPublishes()
	time.Sleep(200 * time.Millisecond)
	sent0 := sent.Load()
	i := 0
	for b.Loop() {
		w0 := writes.Load()
		sb.join(true, fmt.Sprint("j", i))
		i++
		for deadline := time.Now().Add(10 * time.Second); writes.Load() == w0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatal("the recorder got no message about a new recorded node in 10 s")
			}
		}
	}
	perJoin := float64(sent.Load()-sent0) / float64(b.N)
	fmt.Printf("bytes sent to the recorder per recorded node's join: %.0f\n", perJoin)
	b.ReportMetric(perJoin, "bytes-sent/join")
}
