package console

import (
	"net/url"
	"regexp"
	"slices"
	"strings"

	"tsconnect/derpws"
)

// ContentSecurityPolicy is sent with every console page and API answer. No inline
// scripts; wasm compiles ('wasm-unsafe-eval'); the wasm runs in a Worker (blob: allowed);
// xterm.js sets inline styles. It is the whole policy when every relay is the server itself.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; " +
	"style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; " +
	"base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// cspHost is what a relay's host[:port] may be to be named in the policy (no spaces,
// quotes, semicolons or paths: a DERP map cannot add directives).
var cspHost = regexp.MustCompile(`^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$`)

// cspEntry is the policy computed for one list of replica URLs.
type cspEntry struct {
	replicas []string
	policy   string
}

// policy returns the Content-Security-Policy for the control replicas listed now (they come
// and go; it is computed again when the list changed).
func (c *Console) policy() string {
	replicas := c.srv.ReplicaURLs()
	if e := c.csp.Load(); e != nil && slices.Equal(e.replicas, replicas) {
		return e.policy
	}
	e := &cspEntry{replicas: replicas, policy: policyFor(c.srv.DERPMap(), c.origin, replicas)}
	c.csp.Store(e)
	return e.policy
}

// policyFor is ContentSecurityPolicy with connect-src also allowing what the browser's node
// may need that is not self (origin): the relays of m, which it probes over HTTP(S) and
// connects to over WebSocket, and the other control replicas (their control WebSocket and
// their embedded relays), to which it moves when its own replica dies. Its Worker runs
// under the console page's policy, so a page knows the replicas listed when it was loaded.
func policyFor(m *derpws.Map, self string, replicas []string) string {
	var extra []string
	add := func(raw string) {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !cspHost.MatchString(u.Host) {
			return
		}
		o := u.Scheme + "://" + strings.ToLower(u.Host)
		if o == self {
			return
		}
		ws := "ws://"
		if u.Scheme == "https" {
			ws = "wss://"
		}
		extra = append(extra, o, ws+strings.ToLower(u.Host))
	}
	if m != nil {
		for _, r := range m.Regions {
			for _, n := range r.Nodes {
				add(derpws.NodeURL(n))
			}
		}
	}
	for _, r := range replicas {
		add(r)
	}
	if len(extra) == 0 {
		return ContentSecurityPolicy
	}
	slices.Sort(extra)
	extra = slices.Compact(extra)
	return strings.Replace(ContentSecurityPolicy, "connect-src 'self'", "connect-src 'self' "+strings.Join(extra, " "), 1)
}
