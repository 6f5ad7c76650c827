package control

import (
	"context"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"tsconnect/control/store/pgstore"
	"tsconnect/controlws"
	"tsconnect/internal/testpg"
	"tsconnect/key"
)

// benchReplica starts a server on the PostgreSQL database at url behind a loopback HTTP
// server; both close when b ends.
func benchReplica(b *testing.B, url string) (*Server, string) {
	st, err := pgstore.Open(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(nil)
	hs.Start()
	s, err := New(Config{StateDir: b.TempDir(), ServerURL: hs.URL, Store: st})
	if err != nil {
		st.Close()
		b.Fatal(err)
	}
	hs.Config.Handler = s.Handler()
	b.Cleanup(func() { s.Close(); hs.CloseClientConnections(); hs.Close() })
	return s, hs.URL
}

// BenchmarkReplicaFanOut measures how long a change made through replica A takes to reach
// the map streams replica B holds (two servers on one real PostgreSQL database): each
// iteration retags a node through A and waits until each of 20 nodes streaming from B has
// received a map with the new tag. It prints p50, p99 and max over every (change, stream).
func BenchmarkReplicaFanOut(b *testing.B) {
	const streams = 20
	url := testpg.Start(b).NewDatabase(b)
	a, _ := benchReplica(b, url)
	_, bURL := benchReplica(b, url)
	ctx := context.Background()
	if _, err := a.SetPolicy(ctx, []byte(`{"tagOwners": {"tag:web": ["ada@example.com"], "tag:db": ["ada@example.com"]}, "acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}`), "bench"); err != nil {
		b.Fatal(err)
	}
	u, err := a.CreateUser(ctx, "ada@example.com", RoleMember)
	if err != nil {
		b.Fatal(err)
	}
	secret, _, err := a.CreateAuthKey(ctx, AuthKeyOptions{User: u.ID, Reusable: true})
	if err != nil {
		b.Fatal(err)
	}
	changed, err := a.SetNodeTags(ctx, registerBench(b, bURL, secret, "changed", nil), []string{"tag:db"}, TagNodeOptions{})
	if err != nil {
		b.Fatal(err)
	}

	// Each stream reports when it first holds the tag the iteration wants.
	var mu sync.Mutex
	want := "tag:db"
	heard := make(chan time.Time, streams)
	seen := make([]bool, streams)
	for i := range streams {
		registerBench(b, bURL, secret, "on-b-"+strconv.Itoa(i), func(nm *controlws.NetworkMap) {
			p, ok := nm.PeerByName(changed.Name)
			mu.Lock()
			defer mu.Unlock()
			if ok && slices.Contains(p.Tags, want) && !seen[i] {
				seen[i] = true
				heard <- time.Now()
			}
		})
	}
	for range streams {
		<-heard
	}
	var times []time.Duration
	for i := 0; b.Loop(); i++ {
		tag := []string{"tag:web", "tag:db"}[i%2]
		mu.Lock()
		want, seen = tag, make([]bool, streams)
		mu.Unlock()
		t0 := time.Now()
		if _, err := a.SetNodeTags(ctx, changed.ID, []string{tag}, TagNodeOptions{}); err != nil {
			b.Fatal(err)
		}
		for range streams {
			select {
			case t := <-heard:
				times = append(times, t.Sub(t0))
			case <-time.After(30 * time.Second):
				b.Fatalf("change %d: a stream on B never heard of it", i)
			}
		}
	}
	slices.Sort(times)
	pct := func(p float64) time.Duration { return times[min(len(times)-1, int(p*float64(len(times))))] }
	b.ReportMetric(float64(pct(0.5).Microseconds())/1000, "ms-p50")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "ms-p99")
	b.ReportMetric(float64(pct(1).Microseconds())/1000, "ms-max")
	b.Logf("%d changes through A to %d streams on B: p50 %v p99 %v max %v", len(times)/streams, streams,
		pct(0.5).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), pct(1).Round(time.Millisecond))
}

// registerBench registers a node at the control at url and, when onMap is set, follows its
// map stream until b ends; it returns the node's ID.
func registerBench(b *testing.B, url, secret, name string, onMap func(*controlws.NetworkMap)) int64 {
	ctx, cancel := context.WithCancel(context.Background())
	c, err := controlws.Dial(ctx, controlws.DialOptions{ServerURL: url, MachineKey: key.NewPrivate()})
	if err != nil {
		b.Fatal(err)
	}
	nk := key.NewPrivate().Public()
	r, err := c.Register(ctx, controlws.RegisterRequest{AuthKey: secret, NodeKey: nk, Hostinfo: controlws.Hostinfo{Hostname: name}})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	if onMap == nil {
		close(done)
	} else {
		go func() {
			defer close(done)
			c.WatchMaps(ctx, controlws.MapRequest{NodeKey: nk}, onMap)
		}()
	}
	b.Cleanup(func() { cancel(); c.Close(); <-done })
	return r.Node.ID
}
