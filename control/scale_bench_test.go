package control

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"tsconnect/controlws"
	"tsconnect/key"
)

// sparsePolicy lets members reach the tagged servers and the servers reach members on one port.
const sparsePolicy = `{"tagOwners": {"tag:server": ["ada@example.com"]},
	"acls": [{"action": "accept", "src": ["autogroup:member"], "dst": ["tag:server:*"]},
		{"action": "accept", "src": ["tag:server"], "dst": ["autogroup:member:22"]}]}`

// BenchmarkJoinSparse measures nodes joining one by one (register, open a map stream, its
// first map) into BENCH_JOIN_NODES (default 3,000) connected nodes under the sparse policy
// (10 tagged servers), in-process with streams whose transport write only counts bytes:
// control's own cost per join, without Noise or the network. Run with -cpuprofile to see
// where a join goes.
func BenchmarkJoinSparse(b *testing.B) {
	n := 3000
	if v := os.Getenv("BENCH_JOIN_NODES"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	sb := newSparseBench(b)
	t0 := time.Now()
	for i := range n {
		sb.join(i < 10, fmt.Sprint("n", i))
	}
	b.Logf("%d nodes joined one by one in %v", n, time.Since(t0).Round(time.Millisecond))
	sent0 := sb.sent.Load()
	i := 0
	cpu0 := processCPU(b)
	for b.Loop() {
		sb.join(false, fmt.Sprint("j", i))
		i++
	}
	b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/join")
	b.ReportMetric(float64(sb.sent.Load()-sent0)/float64(b.N), "bytes-sent/join")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "joins/s")
}

// densePolicy lets everyone reach everyone; step changes the port of a second rule, which is
// in every node's filter.
func densePolicy(step int) string {
	return fmt.Sprintf(`{"tagOwners": {"tag:server": ["ada@example.com"]},
	"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]},
		{"action": "accept", "src": ["*"], "dst": ["*:%d"]}]}`, 20000+step)
}

// BenchmarkPolicyDense measures a policy change that changes every node's rules in a network
// of BENCH_JOIN_NODES (default 2,000) connected nodes where everyone sees everyone, in-process
// as BenchmarkJoinSparse: control's CPU and the bytes sent until every stream got its message.
func BenchmarkPolicyDense(b *testing.B) {
	n := 2000
	if v := os.Getenv("BENCH_JOIN_NODES"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	sb := newPolicyBench(b, densePolicy(0))
	for i := range n {
		sb.join(false, fmt.Sprint("n", i))
	}
	sb.s.flushPublishes()
	time.Sleep(500 * time.Millisecond) // the last joins' deltas
	ctx := context.Background()
	step := 0
	sent0 := sb.sent.Load()
	cpu0 := processCPU(b)
	for b.Loop() {
		step++
		w0 := sb.writes.Load()
		if _, err := sb.s.SetPolicy(ctx, []byte(densePolicy(step)), "ada@example.com"); err != nil {
			b.Fatal(err)
		}
		for sb.writes.Load()-w0 < int64(n) {
			time.Sleep(time.Millisecond)
		}
	}
	b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/change")
	b.ReportMetric(float64(sb.sent.Load()-sent0)/float64(b.N), "bytes-sent/change")
}

// BenchmarkConnectSparse measures BENCH_JOIN_NODES (default 3,000) nodes connecting at once
// (64 registering at a time, after the 10 servers) under the sparse policy, in-process as
// BenchmarkJoinSparse: the time until every node has its first map, and control's CPU; on
// PostgreSQL (BENCH_STORE=postgres) also the statements it ran per node.
func BenchmarkConnectSparse(b *testing.B) {
	n := 3000
	if v := os.Getenv("BENCH_JOIN_NODES"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	for b.Loop() {
		sb := newSparseBench(b)
		for i := range 10 {
			sb.join(true, fmt.Sprint("s", i))
		}
		cpu0 := processCPU(b)
		sb.statements()
		t0 := time.Now()
		var wg sync.WaitGroup
		sem := make(chan struct{}, 64)
		for i := range n - 10 {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				sb.join(false, fmt.Sprint("n", i))
			})
		}
		wg.Wait()
		d := time.Since(t0)
		b.ReportMetric(d.Seconds(), "s/connect-all")
		b.ReportMetric((processCPU(b) - cpu0).Seconds(), "cpu-s/connect-all")
		if st := sb.statements(); st > 0 {
			// Each a round trip to PostgreSQL: what the store costs a node's registration and
			// first map, whatever the machine's load.
			b.ReportMetric(float64(st)/float64(n-10), "pg-statements/node")
		}
		sb.close()
	}
}

// sparseBench is a server under the sparse policy whose streams' transport writes only
// count bytes.
type sparseBench struct {
	b              *testing.B
	s              *Server
	member, server string
	done           chan struct{}
	wg             sync.WaitGroup
	sent           atomic.Int64
	writes         atomic.Int64
	statements     func() int64 // PostgreSQL's statements since the last call (benchServerCounted)
}

func newSparseBench(b *testing.B) *sparseBench { return newPolicyBench(b, sparsePolicy) }

// newPolicyBench is a server under policy (tag:server owned by ada@example.com) whose streams'
// transport writes only count bytes.
func newPolicyBench(b *testing.B, policy string) *sparseBench {
	s, statements := benchServerCounted(b)
	ctx := context.Background()
	u, err := s.CreateUser(ctx, "ada@example.com", RoleAdmin)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.SetPolicy(ctx, []byte(policy), "ada@example.com"); err != nil {
		b.Fatal(err)
	}
	sb := &sparseBench{b: b, s: s, done: make(chan struct{}), statements: statements}
	if sb.member, _, err = s.CreateAuthKey(ctx, AuthKeyOptions{User: u.ID, Reusable: true}); err != nil {
		b.Fatal(err)
	}
	if sb.server, _, err = s.CreateAuthKey(ctx, AuthKeyOptions{Reusable: true, Tags: []string{"tag:server"}}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(sb.close)
	return sb
}

// close ends the streams (once).
func (sb *sparseBench) close() {
	select {
	case <-sb.done:
	default:
		close(sb.done)
	}
	sb.wg.Wait()
}

// join registers a node, opens its stream and returns when its first map went out.
func (sb *sparseBench) join(server bool, name string) {
	k := sb.member
	if server {
		k = sb.server
	}
	sb.joinKey(k, name, &sb.sent, &sb.writes)
}

// joinKey is join with auth key k, counting the stream's bytes and writes in sent and writes.
func (sb *sparseBench) joinKey(k, name string, sent, writes *atomic.Int64) {
	b, s, ctx := sb.b, sb.s, context.Background()
	mk, nk := key.NewPrivate().Public(), key.NewPrivate().Public()
	if _, err := s.register(ctx, mk, &controlws.RegisterRequest{AuthKey: k, NodeKey: nk,
		Hostinfo: controlws.Hostinfo{Hostname: name, OS: "linux"}}); err != nil {
		b.Error(err)
		return
	}
	first := make(chan struct{})
	var once sync.Once
	nc := &nodeConn{machine: mk, version: controlws.Version, conn: countingConn{func(env *controlws.Envelope) error {
		sent.Add(int64(len(env.Body)))
		writes.Add(1)
		once.Do(func() { close(first) })
		return nil
	}}}
	st, err := s.openStream(ctx, nc, 1, &controlws.MapRequest{NodeKey: nk})
	if err != nil {
		b.Error(err)
		return
	}
	sb.wg.Go(func() { st.run(sb.done) })
	<-first
}

// countingConn is a node connection whose writes go to fn.
type countingConn struct {
	fn func(*controlws.Envelope) error
}

func (c countingConn) ReadEnvelope() (*controlws.Envelope, error)  { select {} }
func (c countingConn) WriteEnvelope(env *controlws.Envelope) error { return c.fn(env) }
func (c countingConn) PeerKey() key.Public                         { return key.Public{} }
func (c countingConn) Version() int                                { return controlws.Version }
func (c countingConn) Close() error                                { return nil }

// processCPU is the CPU time (user and system) this process has used: on a shared machine
// the cost of a change, where wall time says how much CPU the run got.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
