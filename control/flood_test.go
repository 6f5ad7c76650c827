package control

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"tsconnect/controlws"
)

// logBuffer collects a server's log lines.
type logBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	longest int
}

func (l *logBuffer) logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(line + "\n")
	l.longest = max(l.longest, len(line))
}

func (l *logBuffer) size() (total, longest int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len(), l.longest
}

// TestInteractiveLoginFloodIsCapped: an anonymous client opening interactive logins is
// refused past MaxPendingLoginsPerConn on one connection and MaxPendingLoginsPerSource from
// one address (too_many, naming which), and past MaxPendingLogins overall; another client
// can still start a login; a 4 MiB hostname is refused at the door and the log stays small.
func TestInteractiveLoginFloodIsCapped(t *testing.T) {
	var logs logBuffer
	e := newEnv(t, func(c *Config) { c.Logf = logs.logf })
	var flood atomic.Bool
	inner := e.s.Handler()
	var wrapped http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if flood.Load() {
			r.RemoteAddr = "[2001:db8:1:2:" + fmt.Sprint(len(r.RemoteAddr)) + "::7]:4242" // one /64
		}
		inner.ServeHTTP(w, r)
	})
	e.h.Store(&wrapped)
	login := func(r *rawConn, id uint64, hostname string) {
		r.send(controlws.TypeRegister, id, controlws.RegisterRequest{NodeKey: newKey().Public(), Interactive: true,
			Hostinfo: controlws.Hostinfo{Hostname: hostname, OS: "linux"}})
	}
	flood.Store(true)
	first := e.rawConn()
	login(first, 1, strings.Repeat("x", 4<<20))
	first.wantError(1, controlws.CodeBadRequest, "hostname is 4194304 bytes, over the limit of 256")
	for i := range MaxPendingLoginsPerConn {
		login(first, uint64(10+i), "flood")
		first.want(uint64(10+i), controlws.TypeLoginURL)
	}
	login(first, 99, "flood")
	first.wantError(99, controlws.CodeTooMany, "this connection has 2 interactive logins pending")
	// More connections from the same /64 fill its share, then are refused.
	for n := MaxPendingLoginsPerConn; n < MaxPendingLoginsPerSource; n += MaxPendingLoginsPerConn {
		r := e.rawConn()
		for i := range MaxPendingLoginsPerConn {
			login(r, uint64(i+1), "flood")
			r.want(uint64(i+1), controlws.TypeLoginURL)
		}
	}
	r := e.rawConn()
	login(r, 1, "flood")
	r.wantError(1, controlws.CodeTooMany, "your address has 16 interactive logins pending")

	// Another client (loopback, not the flooding /64) still gets its login.
	flood.Store(false)
	other := e.rawConn()
	login(other, 1, "honest")
	other.want(1, controlws.TypeLoginURL)
	// The server-wide cap (lowered here) refuses everyone past it.
	e.s.flows.mu.Lock()
	e.s.flows.maxLogins = len(e.s.flows.logins)
	e.s.flows.mu.Unlock()
	late := e.rawConn()
	login(late, 1, "late")
	late.wantError(1, controlws.CodeTooMany, "control has 17 interactive logins pending, its limit")

	total, longest := logs.size()
	t.Logf("log after the flood: %d bytes, longest line %d", total, longest)
	if total > 64<<10 || longest > 1024 {
		t.Fatalf("the flood wrote %d bytes of log, longest line %d; want a bounded log", total, longest)
	}
}

// TestCheckFloodFromOneNodeIsCapped: pending checks are capped per source node
// (MaxPendingChecksPerSource) and per agent (MaxPendingChecksPerDest): past either, the
// sshCheck is refused with too_many naming the node, while checks for other nodes still
// go pending.
func TestCheckFloodFromOneNodeIsCapped(t *testing.T) {
	cn := newCheckNet(t)
	e := cn.e
	kb := e.authKey(AuthKeyOptions{User: cn.bob.ID, Reusable: true})
	var srcs []controlws.Node
	for i := range 5 {
		_, n := e.mustRegister(kb, fmt.Sprintf("bob-%d", i))
		srcs = append(srcs, n)
	}
	server2, _ := e.mustRegister(e.authKey(AuthKeyOptions{User: cn.alice.ID, Tags: []string{"tag:server"}, CreatedBy: cn.alice.ID}), "server2")
	for _, src := range srcs[:4] {
		for range MaxPendingChecksPerSource {
			cn.ask(src, "root").waitPending(t)
		}
	}
	refused := func(c *checkCall, want string) {
		t.Helper()
		<-c.done
		c.cancel()
		if !strings.Contains(fmt.Sprint(c.err), "too_many") || !strings.Contains(fmt.Sprint(c.err), want) {
			t.Fatalf("check past the cap: verdict %+v, err %v; want too_many saying %q", c.v, c.err, want)
		}
	}
	// The agent holds 32 checks: the next one, from a fresh source, is refused.
	refused(cn.ask(srcs[4], "root"), "32 SSH checks are pending on server")
	// Another agent still gets its check for that source...
	askFrom(server2, srcs[4], "root").waitPending(t)
	// ...but not a ninth one from a source that has eight pending.
	refused(askFrom(server2, srcs[0], "root"), "8 SSH checks are pending for logins from bob-0")
	e.s.flows.mu.Lock()
	n := len(e.s.flows.checks)
	e.s.flows.mu.Unlock()
	if n != 4*MaxPendingChecksPerSource+1 {
		t.Fatalf("%d checks pending, want %d", n, 4*MaxPendingChecksPerSource+1)
	}
}
