package console

import (
	"net/http"
	"net/netip"
	"testing"
)

// TestForwardedForChain: the client is the rightmost forwarded address that is not a
// trusted proxy; a garbage entry ends the chain there; without trust nothing is read.
func TestForwardedForChain(t *testing.T) {
	c := &Console{o: Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}
	for _, tc := range []struct {
		peer string
		hdr  http.Header
		want string
	}{
		{"192.0.2.1:5", http.Header{"X-Forwarded-For": {"203.0.113.9"}}, "192.0.2.1"},              // peer not trusted
		{"10.0.0.1:5", http.Header{"X-Forwarded-For": {"203.0.113.9, 10.0.0.2"}}, "203.0.113.9"},   // skips our proxies
		{"10.0.0.1:5", http.Header{"X-Forwarded-For": {"1.1.1.1", "203.0.113.9"}}, "203.0.113.9"},  // two header lines
		{"10.0.0.1:5", http.Header{"X-Forwarded-For": {"evil, junk, 203.0.113.9"}}, "203.0.113.9"}, // spoofed left part ignored
		{"10.0.0.1:5", http.Header{"X-Forwarded-For": {"203.0.113.9, junk"}}, "10.0.0.1"},          // garbage nearest: the proxy
		{"10.0.0.1:5", http.Header{"Forwarded": {`for=192.0.2.60;proto=http, for="[2001:db8::1]:4711"`}}, "2001:db8::1"},
		{"10.0.0.1:5", http.Header{}, "10.0.0.1"},
		{"[::ffff:10.0.0.1]:5", http.Header{"X-Forwarded-For": {"::ffff:203.0.113.9"}}, "203.0.113.9"}, // mapped forms unmapped
	} {
		r := &http.Request{RemoteAddr: tc.peer, Header: tc.hdr}
		if got := c.clientIP(r).String(); got != tc.want {
			t.Errorf("peer %s, %v: client %s, want %s", tc.peer, tc.hdr, got, tc.want)
		}
	}
}

// FuzzForwardedFor: no header value makes the parser panic or return more than
// maxForwardedHops addresses.
func FuzzForwardedFor(f *testing.F) {
	f.Add("203.0.113.9, 10.0.0.2", `for="[2001:db8::1]:4711";proto=https`)
	f.Add("", "for=unknown, for=_hidden")
	f.Add(",,,", `for="[::1`)
	f.Fuzz(func(t *testing.T, xff, fwd string) {
		for _, h := range []http.Header{{"X-Forwarded-For": {xff}}, {"Forwarded": {fwd}}} {
			if n := len(forwardedFor(h)); n > maxForwardedHops {
				t.Fatalf("%d hops, more than %d", n, maxForwardedHops)
			}
		}
	})
}
