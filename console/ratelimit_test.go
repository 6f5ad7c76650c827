package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tsconnect/control"
	"tsconnect/controlws"
)

// behindProxy makes the console trust forwarded headers from loopback (its test clients).
func behindProxy(e *env) {
	e.opts = func(o *Options) { o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} }
}

// heapPeak samples the heap in use until stop is closed and returns its peak above the
// heap in use at the start.
func heapPeak(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapInuse, ms.HeapInuse
	go func() {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				out <- peak - base
				return
			case <-t.C:
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
		}
	}()
	return out
}

// TestParallelWrongPasswordsHashAtMostTheLimit: 60 wrong passwords for one account sent at
// once, each from its own address (through a trusted proxy, so the per-address limits do
// not help): at most maxFailuresPerEmail are checked (401), the others are refused at once
// (429) without hashing, and the heap stays within MaxConcurrentHashes argon2id runs.
func TestParallelWrongPasswordsHashAtMostTheLimit(t *testing.T) {
	e := newEnvWith(t, behindProxy)
	e.user("ada@example.com", control.RoleAdmin, "correct horse")
	c := e.client()
	stop := make(chan struct{})
	peak := heapPeak(stop)
	var checked, limited, other atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, _ := json.Marshal(loginRequest{Email: "ada@example.com", Password: "guess " + strconv.Itoa(i)})
			req, _ := http.NewRequest("POST", e.hs.URL+"/api/v1/login", bytes.NewReader(body))
			req.Header.Set("Origin", e.hs.URL)
			req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i+1))
			<-start
			resp, err := c.hc.Do(req)
			if err != nil {
				other.Add(1)
				return
			}
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusUnauthorized:
				checked.Add(1)
			case http.StatusTooManyRequests:
				limited.Add(1)
			default:
				other.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(stop)
	grew := <-peak
	t.Logf("60 parallel wrong passwords: %d checked (401), %d refused at once (429), %d other; heap peak +%.1f MiB",
		checked.Load(), limited.Load(), other.Load(), float64(grew)/(1<<20))
	if checked.Load() > maxFailuresPerEmail || checked.Load() == 0 || other.Load() != 0 {
		t.Fatalf("%d passwords checked, %d others; want 1..%d checked and the rest 429", checked.Load(), other.Load(), maxFailuresPerEmail)
	}
	if limit := uint64(control.MaxConcurrentHashes+2) * 46 << 20; grew > limit {
		t.Fatalf("heap grew by %d MiB, want at most %d MiB", grew>>20, limit>>20)
	}
	// The account stays locked for the right password too.
	c.login("ada@example.com", "correct horse").want(t, http.StatusTooManyRequests, codeRateLimited)
}

// TestMadeUpEmailFloodKeepsRealAccountCount: a flood of failures for made-up emails (far
// more than the limiter's table holds) does not reset a real account's failures.
func TestMadeUpEmailFloodKeepsRealAccountCount(t *testing.T) {
	e := newEnvWith(t, behindProxy)
	e.user("ada@example.com", control.RoleAdmin, "correct horse")
	c := e.client()
	for i := range maxFailuresPerEmail - 1 {
		c.do("POST", "/api/v1/login", loginRequest{Email: "ada@example.com", Password: "guess"},
			"X-Forwarded-For", "203.0.113."+strconv.Itoa(i+1)).want(t, http.StatusUnauthorized, codeBadLogin)
	}
	// The flood: as many made-up emails as the handler would count, each a failure (hashing
	// each over HTTP would take minutes; the table is the one the handler fills).
	for i := range 3 * maxLimiterKeys {
		e.con.byEmail.reserve(fmt.Sprintf("made-up-%d@example.com", i))
	}
	c.do("POST", "/api/v1/login", loginRequest{Email: "ada@example.com", Password: "guess"},
		"X-Forwarded-For", "203.0.113.100").want(t, http.StatusUnauthorized, codeBadLogin)
	c.do("POST", "/api/v1/login", loginRequest{Email: "ada@example.com", Password: "guess"},
		"X-Forwarded-For", "203.0.113.101").want(t, http.StatusTooManyRequests, codeRateLimited)
}

// TestIPv6ClientsCountPer64: failures from many addresses of one IPv6 /64 count together;
// another /64 is not locked out.
func TestIPv6ClientsCountPer64(t *testing.T) {
	e := newEnvWith(t, behindProxy)
	e.user("bo@example.com", control.RoleMember, "battery staple")
	c := e.client()
	for i := range maxFailuresPerAddr {
		c.do("POST", "/api/v1/login", loginRequest{Email: "x" + strconv.Itoa(i) + "@example.com", Password: "guess"},
			"X-Forwarded-For", fmt.Sprintf("2001:db8:1:2::%x", i+1)).want(t, http.StatusUnauthorized, codeBadLogin)
	}
	c.do("POST", "/api/v1/login", loginRequest{Email: "bo@example.com", Password: "battery staple"},
		"X-Forwarded-For", "2001:db8:1:2:ffff:ffff:ffff:ffff").want(t, http.StatusTooManyRequests, codeRateLimited)
	c.do("POST", "/api/v1/login", loginRequest{Email: "bo@example.com", Password: "battery staple"},
		"X-Forwarded-For", "2001:db8:1:3::1").want(t, http.StatusOK, "")
	for in, want := range map[string]string{"2001:db8:1:2:aaaa::1": "2001:db8:1:2::/64", "192.0.2.7": "192.0.2.7", "::ffff:192.0.2.7": "192.0.2.7"} {
		if got := limitKey(netip.MustParseAddr(in).Unmap()); got != want {
			t.Errorf("limitKey(%s) = %s, want %s", in, got, want)
		}
	}
}

// TestForwardedHeaderTrustedOnlyFromTrustedProxy: without --trusted-proxy a forged
// X-Forwarded-For or Forwarded changes nothing (the audit log names the peer); from a
// trusted proxy the client it names is the one counted and logged.
func TestForwardedHeaderTrustedOnlyFromTrustedProxy(t *testing.T) {
	lastDetail := func(e *env) string {
		ev, err := e.srv.AuditLog(t.Context(), 0, 1)
		if err != nil || len(ev) != 1 {
			t.Fatalf("audit log %v %v", ev, err)
		}
		return ev[0].Detail
	}
	for _, trusted := range []bool{false, true} {
		var e *env
		if trusted {
			e = newEnvWith(t, behindProxy)
		} else {
			e = newEnv(t)
		}
		c := e.client()
		for _, hdr := range [][]string{
			{"X-Forwarded-For", "192.0.2.99, 203.0.113.7"},
			{"Forwarded", `for="[2001:db8::7]:443";proto=https`},
		} {
			c.do("POST", "/api/v1/login", loginRequest{Email: "nobody@example.com", Password: "guess"}, hdr...).
				want(t, http.StatusUnauthorized, codeBadLogin)
			want := "from 127.0.0.1:"
			if trusted && hdr[0] == "X-Forwarded-For" {
				want = "from 203.0.113.7:"
			} else if trusted {
				want = "from 2001:db8::7:"
			}
			if d := lastDetail(e); !strings.Contains(d, want) {
				t.Errorf("trusted proxy %v, %s: %s: audit detail %q, want %q", trusted, hdr[0], hdr[1], d, want)
			}
		}
	}
}

// TestRefusedLoginFloodDoesNotFillAuditLog: 1 MiB emails are refused (413) before anything
// is stored; 30 rate-limited attempts with long emails leave one coalesced row, and every
// stored field is bounded.
func TestRefusedLoginFloodDoesNotFillAuditLog(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	huge := strings.Repeat("a", 1<<20) + "@example.com"
	for range 30 {
		c.login(huge, "guess").want(t, http.StatusRequestEntityTooLarge, codeTooLarge)
	}
	long := strings.Repeat("b", 7000) + "@example.com"
	for range maxFailuresPerEmail {
		c.login(long, "guess").want(t, http.StatusUnauthorized, codeBadLogin)
	}
	for range 30 {
		c.login(long, "guess").want(t, http.StatusTooManyRequests, codeRateLimited)
	}
	ev, err := e.srv.AuditLog(t.Context(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	size := 0
	for _, x := range ev {
		size += len(x.User) + len(x.Detail)
	}
	t.Logf("audit log after 60 hostile logins: %d rows, %d bytes of email and detail", len(ev), size)
	if len(ev) > maxFailuresPerEmail+1 || size > 16<<10 {
		t.Fatalf("audit log holds %d rows, %d bytes; want at most %d rows and 16 KiB", len(ev), size, maxFailuresPerEmail+1)
	}
}

// parallelPosts sends n form posts to path at once, each from its own forwarded address,
// and counts the answers by status.
func parallelPosts(c *client, path string, n int, form func(i int) url.Values) map[int]int {
	var mu sync.Mutex
	got := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", c.e.hs.URL+path, strings.NewReader(form(i).Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", c.e.hs.URL)
			req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i+1))
			<-start
			status := 0
			if resp, err := c.hc.Do(req); err == nil {
				resp.Body.Close()
				status = resp.StatusCode
			}
			mu.Lock()
			got[status]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return got
}

// TestParallelWrongPasswordsOnCheckAndLoginPages: the check page and the node login page
// hold the same line as the API: of 60 parallel wrong passwords at most the limit are
// checked, the rest are answered 429 at once.
func TestParallelWrongPasswordsOnCheckAndLoginPages(t *testing.T) {
	e := newEnvWith(t, behindProxy)
	cn := newCheckNet(e, "laptop")
	h := cn.ask(cn.laptop)
	c := e.client()
	tok := token(t, c.do("GET", "/check/"+h.id, nil))
	got := parallelPosts(c, "/check/"+h.id, 60, func(i int) url.Values { return approve(tok, "alice@example.com", "guess-"+strconv.Itoa(i)) })
	if got[http.StatusUnauthorized] > maxFailuresPerEmail || got[http.StatusUnauthorized]+got[http.StatusTooManyRequests] != 60 {
		t.Fatalf("check page: answers by status %v; want at most %d 401 and the rest 429", got, maxFailuresPerEmail)
	}
	h.stillHeld(t, e)

	e.user("bo@example.com", control.RoleMember, "battery staple")
	il := e.interactive(controlws.Hostinfo{Hostname: "desk", OS: "linux"})
	p := il.path(t, e)
	ltok := token(t, c.do("GET", p, nil))
	got = parallelPosts(c, p, 60, func(i int) url.Values {
		return url.Values{"token": {ltok}, "action": {"signin"}, "email": {"bo@example.com"}, "password": {"guess-" + strconv.Itoa(i)}}
	})
	if got[http.StatusUnauthorized] > maxFailuresPerEmail || got[http.StatusUnauthorized]+got[http.StatusTooManyRequests] != 60 {
		t.Fatalf("login page: answers by status %v; want at most %d 401 and the rest 429", got, maxFailuresPerEmail)
	}
}
