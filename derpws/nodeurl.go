package derpws

import (
	"net"
	"strconv"
)

// NodeURL returns the /derp URL of a DERP map node: https unless InsecureForTests (then http),
// port DERPPort or 443 when it is 0, host HostName or else IPv4 or IPv6.
func NodeURL(n *Node) string {
	scheme := "https"
	if n.InsecureForTests {
		scheme = "http"
	}
	host := n.HostName
	if host == "" {
		host = n.IPv4
	}
	if host == "" {
		host = n.IPv6
	}
	port := n.DERPPort
	if port == 0 {
		port = 443
	}
	if scheme == "https" && port == 443 {
		if net.ParseIP(host).To4() == nil && net.ParseIP(host) != nil {
			return scheme + "://[" + host + "]/derp"
		}
		return scheme + "://" + host + "/derp"
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/derp"
}
