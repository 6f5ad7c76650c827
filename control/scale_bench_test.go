package control

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
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
	s := benchServer(b)
	ctx := context.Background()
	u, err := s.CreateUser(ctx, "ada@example.com", RoleAdmin)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.SetPolicy(ctx, []byte(sparsePolicy), "ada@example.com"); err != nil {
		b.Fatal(err)
	}
	member, _, err := s.CreateAuthKey(ctx, AuthKeyOptions{User: u.ID, Reusable: true})
	if err != nil {
		b.Fatal(err)
	}
	server, _, err := s.CreateAuthKey(ctx, AuthKeyOptions{Reusable: true, Tags: []string{"tag:server"}})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(done); wg.Wait() }()
	var mu sync.Mutex
	var sent int64
	// join registers a node, opens its stream and returns when its first map went out.
	join := func(authKey, name string) {
		mk, nk := key.NewPrivate().Public(), key.NewPrivate().Public()
		if _, err := s.register(ctx, mk, &controlws.RegisterRequest{AuthKey: authKey, NodeKey: nk,
			Hostinfo: controlws.Hostinfo{Hostname: name, OS: "linux"}}); err != nil {
			b.Fatal(err)
		}
		first := make(chan struct{})
		var once sync.Once
		nc := &nodeConn{machine: mk, version: controlws.Version, conn: countingConn{func(env *controlws.Envelope) error {
			mu.Lock()
			sent += int64(len(env.Body))
			mu.Unlock()
			once.Do(func() { close(first) })
			return nil
		}}}
		st, err := s.openStream(ctx, nc, 1, &controlws.MapRequest{NodeKey: nk})
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() { st.run(done) })
		<-first
	}
	t0 := time.Now()
	for i := range n {
		k := member
		if i < 10 {
			k = server
		}
		join(k, fmt.Sprint("n", i))
	}
	b.Logf("%d nodes joined one by one in %v", n, time.Since(t0).Round(time.Millisecond))
	mu.Lock()
	sent0 := sent
	mu.Unlock()
	i := 0
	cpu0 := processCPU(b)
	for b.Loop() {
		join(member, fmt.Sprint("j", i))
		i++
	}
	b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/join")
	mu.Lock()
	b.ReportMetric(float64(sent-sent0)/float64(b.N), "bytes-sent/join")
	mu.Unlock()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "joins/s")
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
