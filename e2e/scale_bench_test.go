package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"tsconnect/controlws"
	"tsconnect/internal/syncbuf"
	"tsconnect/internal/testpg"
	"tsconnect/key"
)

// scaleServers is how many tagged servers the sparse policy has; members see only them.
const scaleServers = 10

// scalePolicy is the benchmark's policy at step i: dense lets everyone reach everyone, sparse
// lets members reach the tagged servers only. Each step changes one rule's port: in dense it
// is in every node's filter, in sparse in the members' only.
func scalePolicy(dense bool, step int) string {
	port := 20000 + step
	if dense {
		return fmt.Sprintf(`{"tagOwners": {"tag:server": ["ada@example.com"]},
	"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]},
		{"action": "accept", "src": ["*"], "dst": ["*:%d"]}]}`, port)
	}
	return fmt.Sprintf(`{"tagOwners": {"tag:server": ["ada@example.com"]},
	"acls": [{"action": "accept", "src": ["autogroup:member"], "dst": ["tag:server:*"]},
		{"action": "accept", "src": ["tag:server"], "dst": ["autogroup:member:%d"]}]}`, port)
}

// BenchmarkScale runs control as its own process on SQLite (E2E_SCALE_STORE=postgres: on a
// fresh database of a real PostgreSQL server, started by the test) and connects E2E_SCALE_NODES
// (default 1,000) simulated nodes that register and hold real map streams over controlws
// (Noise over WebSocket); a node reads frames and counts bytes and peers, keeping no map.
// E2E_SCALE_POLICY picks "dense" (everyone sees everyone), "sparse" (members see 10 tagged
// servers) or "both" (the default). It prints: connect all, control's idle and peak RSS, full
// map bytes, policy change → last node, node deleted → last peer, one node joins → its peers
// (p50/p99/max over the nodes that must hear of it), joins one by one per second, and
// control's CPU and the bytes sent per change.
func BenchmarkScale(b *testing.B) {
	n := 1000
	if v := os.Getenv("E2E_SCALE_NODES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < scaleServers+2 {
			b.Fatalf("E2E_SCALE_NODES=%q: want a number over %d", v, scaleServers+1)
		}
	}
	raiseNoFile(b)
	var pg *testpg.Server
	switch v := os.Getenv("E2E_SCALE_STORE"); v {
	case "", "sqlite":
	case "postgres":
		pg = testpg.Start(b)
	default:
		b.Fatalf("E2E_SCALE_STORE=%q: want sqlite or postgres", v)
	}
	kinds := []string{"dense", "sparse"}
	if v := os.Getenv("E2E_SCALE_POLICY"); v != "" && v != "both" {
		kinds = []string{v}
	}
	for b.Loop() {
		for _, k := range kinds {
			if k != "dense" && k != "sparse" {
				b.Fatalf("E2E_SCALE_POLICY=%q: want dense, sparse or both", k)
			}
			runScale(b, pg, n, k == "dense")
		}
	}
}

// raiseNoFile lifts the soft limit on open files to the hard one (each node is a socket in
// this process and one in control, which inherits the limit).
func raiseNoFile(b *testing.B) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		b.Fatal(err)
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		b.Fatal(err)
	}
	b.Logf("RLIMIT_NOFILE %d", l.Cur)
}

// scaleNode is one simulated node: its control connection and what it has counted.
type scaleNode struct {
	id     int64
	server bool
	conn   *controlws.Conn
	bytes  atomic.Int64 // map stream bytes (bodies) received
	full   atomic.Int64 // size of the last full map
	peers  atomic.Int64 // peers in the last full map
	first  chan struct{}
	slot   int // index in a watch's receive times
}

// watch is one change being timed: which message counts as having heard of it, and when
// each node did (nanoseconds after t0; 0 not yet).
type watch struct {
	t0    time.Time
	match func(body []byte) bool
	got   []atomic.Int64
}

// scaleRun is one benchmark run's shared state.
type scaleRun struct {
	b     *testing.B
	url   string
	key   key.Public
	dir   string
	pid   int
	watch atomic.Pointer[watch]
	mu    sync.Mutex
	nodes []*scaleNode
}

// runScale runs one scale test of n nodes; pg, if not nil, holds control's store.
func runScale(b *testing.B, pg *testpg.Server, n int, dense bool) {
	name := map[bool]string{true: "dense", false: "sparse"}[dense]
	dir := b.TempDir()
	ln := freePort(b)
	url := "http://" + ln
	args := []string{"control", "--listen", ln, "--state", dir}
	if pg != nil {
		args = append(args, "--store", pg.NewDatabase(b))
	}
	ctrl := startControlProcess(b, url, args...)
	defer func() { ctrl.Process.Kill(); ctrl.Wait() }()
	admin := func(args ...string) string {
		o, err := cliStdin("", args...)
		if err != nil {
			b.Fatalf("tsconnect %s: %v\n%s", strings.Join(args, " "), err, o)
		}
		return o
	}
	admin("users", "create", "--state", dir, "ada@example.com")
	step := 0
	setPolicy := func() {
		step++
		f := filepath.Join(dir, "policy.hujson")
		if err := os.WriteFile(f, []byte(scalePolicy(dense, step)), 0o600); err != nil {
			b.Fatal(err)
		}
		admin("policy", "set", "--state", dir, f)
	}
	setPolicy()
	memberKey := lastLine(admin("keys", "create", "--state", dir, "--user", "ada@example.com", "--reusable"))
	serverKey := lastLine(admin("keys", "create", "--state", dir, "--user", "ada@example.com", "--reusable", "--tags", "tag:server"))
	ctx := context.Background()
	probe, err := controlws.Dial(ctx, controlws.DialOptions{ServerURL: url, MachineKey: key.NewPrivate()})
	if err != nil {
		b.Fatal(err)
	}
	probe.Close()
	r := &scaleRun{b: b, url: url, key: probe.ServerKey(), dir: dir, pid: ctrl.Process.Pid}
	b.Logf("=== %d nodes, %s policy, store %s (load average %s)", n, name, map[bool]string{true: "PostgreSQL", false: "SQLite"}[pg != nil], loadAvg())

	// Connect all: the servers first, then every member at once (64 dials in flight).
	peak := sampleRSS(b, r.pid)
	cpu0 := procCPU(b, r.pid)
	t0 := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range n {
		server := i < scaleServers
		k := memberKey
		if server {
			k = serverKey
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			r.join(k, fmt.Sprintf("n%d", i), server)
		})
		if i == scaleServers-1 {
			wg.Wait()
		}
	}
	wg.Wait()
	for _, sn := range r.nodes {
		<-sn.first
	}
	connect := time.Since(t0)
	peakConnect := peak()
	b.Logf("connect all %d: %v (control CPU %v), control peak RSS %d MiB, %d map bytes received (%.1f MB/s)", n, connect.Round(10*time.Millisecond),
		(procCPU(b, r.pid) - cpu0).Round(10*time.Millisecond), peakConnect>>10, r.totalBytes(), float64(r.totalBytes())/1e6/connect.Seconds())
	time.Sleep(2 * time.Second)
	b.Logf("control idle RSS %d MiB", procStatusKiB(b, r.pid, "VmRSS")>>10)
	scaleConsole(b, url, apiToken(admin, dir, "ada@example.com"), n, func() { r.join(memberKey, "console-probe", false) })
	// The full maps of a member and a server joining now, when every other node is there.
	member, server := r.join(memberKey, "full-member", false), r.join(serverKey, "full-server", true)
	<-member.first
	<-server.first
	b.Logf("full map: a member's %d bytes (%d peers), a server's %d bytes (%d peers)",
		member.full.Load(), member.peers.Load(), server.full.Load(), server.peers.Load())
	time.Sleep(time.Second)

	// A policy change: in dense every node's rules change, in sparse the members' (the
	// servers' rules stay as they were, so they must hear nothing).
	peak = sampleRSS(b, r.pid)
	var members []*scaleNode
	for _, sn := range r.nodes {
		if !sn.server {
			members = append(members, sn)
		}
	}
	if dense {
		members = r.nodes
	}
	r.timeChange("policy change → node", members, func(body []byte) bool { return true }, setPolicy)

	// One node joins: the nodes that may see it must hear of it.
	var hearers []*scaleNode
	if dense {
		hearers = r.nodes
	} else {
		hearers = r.nodes[:scaleServers]
	}
	var joined *scaleNode
	var joinedID atomic.Int64
	joinedID.Store(-1)
	r.timeChange("one node joins → its peers", hearers, func(body []byte) bool {
		return bytes.Contains(body, fmt.Appendf(nil, `{"id":%d,`, joinedID.Load()))
	}, func() {
		joined = r.dialRegister(memberKey, "joiner", false, &joinedID)
	})
	r.mapStream(joined)
	<-joined.first

	// A node is deleted: its peers must hear (a member in dense, a server in sparse).
	victim := r.nodes[len(r.nodes)-2]
	hearers = nil
	for _, sn := range r.nodes {
		if sn != victim && (dense || !victim.server || !sn.server) {
			hearers = append(hearers, sn)
		}
	}
	if !dense {
		victim = r.nodes[scaleServers-1]
		hearers = nil
		for _, sn := range r.nodes {
			if !sn.server {
				hearers = append(hearers, sn)
			}
		}
	}
	gone := victim.id
	r.timeChange("node deleted → its peers", hearers, func(body []byte) bool {
		return bytes.HasPrefix(body, []byte(`{"full":`)) || bytes.Contains(body, []byte(`"peersRemoved":[`)) &&
			removedHas(body, gone)
	}, func() { admin("nodes", "delete", "--state", dir, strconv.FormatInt(gone, 10)) })
	b.Logf("control peak RSS during the changes %d MiB; VmHWM %d MiB", peak()>>10, procStatusKiB(b, r.pid, "VmHWM")>>10)

	// Joins one by one: dial, register, map request, first map; 200 of them or 20 s' worth.
	joins := 0
	cpu0, bytes0 := procCPU(b, r.pid), r.totalBytes()
	t0 = time.Now()
	for ; joins < 200 && time.Since(t0) < 20*time.Second; joins++ {
		sn := r.join(memberKey, fmt.Sprintf("seq%d", joins), false)
		<-sn.first
	}
	d := time.Since(t0)
	time.Sleep(500 * time.Millisecond)
	b.Logf("joins one by one: %d in %v = %.1f/s; control CPU %v per join, %d bytes sent per join",
		joins, d.Round(10*time.Millisecond), float64(joins)/d.Seconds(), ((procCPU(b, r.pid) - cpu0) / time.Duration(joins)).Round(10*time.Microsecond),
		(r.totalBytes()-bytes0)/int64(joins))
	b.Logf("control VmHWM %d MiB", procStatusKiB(b, r.pid, "VmHWM")>>10)
	for _, sn := range r.nodes {
		sn.conn.Close()
	}
}

// removedHas reports whether a delta's peersRemoved lists id.
func removedHas(body []byte, id int64) bool {
	var d struct {
		PeersRemoved []int64 `json:"peersRemoved"`
	}
	return json.Unmarshal(body, &d) == nil && slices.Contains(d.PeersRemoved, id)
}

// timeChange runs change and prints how long until each of hearers got a message match
// accepts (p50, p99, max), with control's CPU and the bytes all nodes received meanwhile.
func (r *scaleRun) timeChange(what string, hearers []*scaleNode, match func([]byte) bool, change func()) {
	b := r.b
	w := &watch{match: match, got: make([]atomic.Int64, len(r.nodes)+1)}
	cpu0, bytes0 := procCPU(b, r.pid), r.totalBytes()
	w.t0 = time.Now()
	r.watch.Store(w)
	change()
	deadline := time.Now().Add(90 * time.Second)
	var times []time.Duration
	for {
		times = times[:0]
		for _, sn := range hearers {
			if v := w.got[sn.slot].Load(); v > 0 {
				times = append(times, time.Duration(v))
			}
		}
		if len(times) == len(hearers) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // let stragglers' bytes land
	r.watch.Store(nil)
	slices.Sort(times)
	pct := func(p float64) time.Duration {
		if len(times) == 0 {
			return 0
		}
		return times[min(len(times)-1, int(p*float64(len(times))))].Round(time.Millisecond)
	}
	b.Logf("%s: %d/%d heard, p50 %v p99 %v max %v; control CPU %v, %d bytes sent", what, len(times), len(hearers),
		pct(0.5), pct(0.99), pct(1), (procCPU(b, r.pid) - cpu0).Round(time.Millisecond), r.totalBytes()-bytes0)
}

func (r *scaleRun) totalBytes() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var t int64
	for _, sn := range r.nodes {
		t += sn.bytes.Load()
	}
	return t
}

// join registers a node and starts its map stream.
func (r *scaleRun) join(authKey, hostname string, server bool) *scaleNode {
	sn := r.dialRegister(authKey, hostname, server, nil)
	r.mapStream(sn)
	return sn
}

// scaleDialTimeout bounds a simulated node's dial. A dense network's connect keeps 64 dials
// waiting on joins that each cost O(N) (about 2 a second at 9,000 nodes), so a wait can pass
// a minute; a real node would redial, this one waits.
const scaleDialTimeout = 5 * time.Minute

// dialRegister connects and registers a node (setting *id, when given, before the register
// answer is read) and adds it to the run.
func (r *scaleRun) dialRegister(authKey, hostname string, server bool, id *atomic.Int64) *scaleNode {
	b := r.b
	ctx, cancel := context.WithTimeout(context.Background(), scaleDialTimeout)
	defer cancel()
	c, err := controlws.DialConn(ctx, controlws.DialOptions{ServerURL: r.url, ServerKey: r.key, MachineKey: key.NewPrivate(), Timeout: scaleDialTimeout})
	if err != nil {
		b.Fatalf("dial %s: %v", hostname, err)
	}
	nk := key.NewPrivate().Public()
	if err := c.Send(controlws.TypeRegister, 1, &controlws.RegisterRequest{AuthKey: authKey, NodeKey: nk,
		Hostinfo: controlws.Hostinfo{Hostname: hostname, OS: "linux"}}); err != nil {
		b.Fatal(err)
	}
	env, err := c.ReadEnvelope()
	if err != nil {
		b.Fatal(err)
	}
	if err := env.Err(); err != nil {
		b.Fatalf("register %s: %v", hostname, err)
	}
	var rr controlws.RegisterResponse
	if err := env.DecodeBody(&rr); err != nil {
		b.Fatal(err)
	}
	if id != nil {
		id.Store(rr.Node.ID)
	}
	sn := &scaleNode{id: rr.Node.ID, server: server, conn: c, first: make(chan struct{})}
	if err := c.Send(controlws.TypeMapRequest, 2, &controlws.MapRequest{NodeKey: nk, Hostinfo: controlws.Hostinfo{Hostname: hostname, OS: "linux"}}); err != nil {
		b.Fatal(err)
	}
	r.mu.Lock()
	sn.slot = len(r.nodes)
	r.nodes = append(r.nodes, sn)
	r.mu.Unlock()
	return sn
}

// mapStream reads sn's map stream until its connection closes, counting and matching.
func (r *scaleRun) mapStream(sn *scaleNode) {
	go func() {
		gotFirst := false
		for {
			env, err := sn.conn.ReadEnvelope()
			if err != nil {
				if !gotFirst {
					close(sn.first)
				}
				return
			}
			if env.Type != controlws.TypeMapResponse {
				continue
			}
			body := env.Body
			if bytes.Equal(body, []byte(`{"keepAlive":true}`)) {
				continue
			}
			sn.bytes.Add(int64(len(body)))
			if bytes.HasPrefix(body, []byte(`{"full":`)) {
				sn.full.Store(int64(len(body)))
				sn.peers.Store(int64(bytes.Count(body, []byte(`"machineKey":`)) - 1))
				if !gotFirst {
					gotFirst = true
					close(sn.first)
					continue
				}
			}
			if w := r.watch.Load(); w != nil && sn.slot < len(w.got) && w.got[sn.slot].Load() == 0 && w.match(body) {
				w.got[sn.slot].CompareAndSwap(0, int64(max(time.Since(w.t0), 1)))
			}
		}
	}()
}

// startControlProcess runs tsconnect with args (a control listening at url) and waits until
// it answers HTTP; the caller kills it.
func startControlProcess(b *testing.B, url string, args ...string) *exec.Cmd {
	ctrl := exec.Command(tsconnectBin, args...)
	var out syncbuf.Buffer
	ctrl.Stdout, ctrl.Stderr = &out, &out
	if err := ctrl.Start(); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(url + "/"); err == nil {
			resp.Body.Close()
			return ctrl
		}
		if time.Now().After(deadline) {
			ctrl.Process.Kill()
			ctrl.Wait()
			b.Fatalf("control never answered\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// procCPU is the user plus system CPU time process pid has used.
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name (which ends with the last ')'): utime is the 12th, stime the 13th.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// loadAvg is the machine's 1-minute load average, to say how busy the run was.
func loadAvg() string {
	raw, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(raw)); len(f) > 0 {
		return f[0]
	}
	return "?"
}
