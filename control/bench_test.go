package control

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"tsconnect/control/store/pgstore"
	"tsconnect/controlws"
	"tsconnect/internal/testpg"
	"tsconnect/key"
)

// benchServer starts a server on a fresh SQLite file, or with BENCH_STORE=postgres on a fresh
// database of a real PostgreSQL server the benchmark starts.
func benchServer(b *testing.B) *Server {
	s, _ := benchServerCounted(b)
	return s
}

// benchServerCounted is benchServer; on PostgreSQL, statements() returns how many statements
// the server ran since the previous call (testpg.Server.Statements), and 0 on SQLite.
func benchServerCounted(b *testing.B) (s *Server, statements func() int64) {
	cfg := Config{StateDir: b.TempDir(), ServerURL: "http://127.0.0.1:1"}
	statements = func() int64 { return 0 }
	switch v := os.Getenv("BENCH_STORE"); v {
	case "", "sqlite":
	case "postgres":
		pg := testpg.Start(b)
		url := pg.NewDatabase(b)
		st, err := pgstore.Open(context.Background(), url)
		if err != nil {
			b.Fatal(err)
		}
		cfg.Store = st
		statements = func() int64 {
			if f := os.Getenv("BENCH_PG_TOP"); f != "" { // where the statements go, and the retries, appended to file f
				top, err := pg.TopStatements(url, 30)
				if err != nil {
					b.Fatal(err)
				}
				out := fmt.Sprintf("serialization retries so far: %d; top statements:\n%s\n", st.Retries(), top)
				if err := appendFile(f, out); err != nil {
					b.Fatal(err)
				}
			}
			n, err := pg.Statements(url)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	default:
		b.Fatalf("BENCH_STORE=%q: want sqlite or postgres", v)
	}
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s, statements
}

func registerN(b *testing.B, s *Server, n int) []int64 {
	ctx := context.Background()
	u, err := s.CreateUser(ctx, "bench@example.com", RoleMember)
	if err != nil {
		b.Fatal(err)
	}
	secret, _, err := s.CreateAuthKey(ctx, AuthKeyOptions{User: u.ID, Reusable: true})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]int64, n)
	for i := range n {
		r, err := s.register(ctx, key.NewPrivate().Public(), &controlws.RegisterRequest{AuthKey: secret,
			NodeKey: key.NewPrivate().Public(), Hostinfo: controlws.Hostinfo{Hostname: fmt.Sprint("node", i), OS: "linux"}})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = r.Node.ID
	}
	s.flushPublishes() // no late delta reaches the streams the benchmark opens next
	return ids
}

// BenchmarkRegister10k registers 10,000 nodes (auth key check, name, addresses, one
// SQLite transaction each) into a fresh server, in-process.
func BenchmarkRegister10k(b *testing.B) {
	const n = 10000
	for b.Loop() {
		b.StopTimer()
		s := benchServer(b)
		b.StartTimer()
		start := time.Now()
		registerN(b, s, n)
		d := time.Since(start)
		b.ReportMetric(d.Seconds(), "s/10k-nodes")
		b.ReportMetric(float64(d.Microseconds())/n, "µs/node")
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
}

// BenchmarkPush1000 measures how long one node's hostinfo change takes to reach 1,000
// connected map streams (in-process: the delta is built and encoded per stream, the
// transport write is a no-op).
func BenchmarkPush1000(b *testing.B) {
	const n = 1000
	s := benchServer(b)
	ids := registerN(b, s, n)
	var (
		mu      sync.Mutex
		pending sync.WaitGroup
		armed   bool
	)
	done := make(chan struct{})
	var wg sync.WaitGroup
	armed = true // count the first full maps
	pending.Add(n - 1)
	for _, id := range ids[1:] {
		st := newStream(s, id, 1, func(env *controlws.Envelope) error {
			mu.Lock()
			if armed {
				pending.Done()
			}
			mu.Unlock()
			return nil
		})
		s.mu.Lock()
		s.streams[id] = map[*stream]struct{}{st: {}}
		s.mu.Unlock()
		wg.Go(func() { st.run(done) })
	}
	defer func() { close(done); wg.Wait() }()
	pending.Wait() // every stream sent its first full map
	mu.Lock()
	armed = false
	mu.Unlock()
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		mu.Lock()
		armed = true
		pending.Add(n - 1)
		mu.Unlock()
		hi := controlws.Hostinfo{Hostname: "node0", Endpoints: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), uint16(i))}}
		if err := s.updateHostinfo(ctx, ids[0], hi); err != nil {
			b.Fatal(err)
		}
		pending.Wait()
		mu.Lock()
		armed = false
		mu.Unlock()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/change-to-1000")
}

// appendFile appends text to the file at path, creating it.
func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(text)
	return errors.Join(err, f.Close())
}
