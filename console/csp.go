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

// policyFor is ContentSecurityPolicy with connect-src also allowing the relays of m that are
// not self (origin): the browser's node, whose Worker runs under the console page's policy,
// probes them over HTTP(S) and connects over WebSocket.
func policyFor(m *derpws.Map, self string) string {
	var extra []string
	if m != nil {
		for _, r := range m.Regions {
			for _, n := range r.Nodes {
				u, err := url.Parse(derpws.NodeURL(n))
				if err != nil || !cspHost.MatchString(u.Host) {
					continue
				}
				o := u.Scheme + "://" + strings.ToLower(u.Host)
				if o == self {
					continue
				}
				ws := "ws://"
				if u.Scheme == "https" {
					ws = "wss://"
				}
				extra = append(extra, o, ws+strings.ToLower(u.Host))
			}
		}
	}
	if len(extra) == 0 {
		return ContentSecurityPolicy
	}
	slices.Sort(extra)
	extra = slices.Compact(extra)
	return strings.Replace(ContentSecurityPolicy, "connect-src 'self'", "connect-src 'self' "+strings.Join(extra, " "), 1)
}
