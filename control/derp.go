package control

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"

	"tsconnect/derpws"
	"tsconnect/key"
)

// EmbeddedRegionID and EmbeddedRegionCode name the embedded relay's region in the DERP map
// (another ID is used if an external map already has region 1).
const (
	EmbeddedRegionID   = 1
	EmbeddedRegionCode = "tsc"
)

// Relay is what the server needs of its embedded DERP relay (a *derpws.Server).
type Relay interface {
	http.Handler
	// ClosePeer drops the live connection of a node key.
	ClosePeer(key.Public)
	// Stats returns a node key's traffic counters.
	Stats(key.Public) derpws.ClientStats
	Close() error
}

// RelayStats returns the embedded relay's counters for node key k (zero without a relay).
func (s *Server) RelayStats(k key.Public) derpws.ClientStats {
	if s.relay == nil {
		return derpws.ClientStats{}
	}
	return s.relay.Stats(k)
}

// newRelay starts the embedded relay, admitting only keys verify accepts, and relays of its
// region showing meshKey ("": no mesh).
func newRelay(priv key.Private, verify func(context.Context, key.Public) error, logf func(string, ...any), meshKey string) Relay {
	return derpws.NewServer(priv, &derpws.ServerOptions{Logf: logf, VerifyClient: verify, MeshKey: meshKey})
}

// buildDERPMap returns the map nodes get: the external map's regions, plus the embedded
// relay (reached at the server URL's host and port, STUN at stunPort, -1 for none, on
// stunAddr when valid, else the URL's host) when embedded is set.
func buildDERPMap(ext *derpws.Map, server *url.URL, embedded bool, stunPort int, stunAddr netip.Addr) *derpws.Map {
	m := &derpws.Map{Regions: map[int]*derpws.Region{}}
	if ext != nil {
		for id, r := range ext.Regions {
			m.Regions[id] = r
		}
	}
	if !embedded {
		return m
	}
	id := EmbeddedRegionID
	for m.Regions[id] != nil {
		id++
	}
	port := 443
	if server.Scheme == "http" {
		port = 80
	}
	if p := server.Port(); p != "" {
		port, _ = strconv.Atoi(p)
	}
	ipv4 := ""
	if stunAddr.Is4() {
		ipv4 = stunAddr.String()
	}
	m.Regions[id] = &derpws.Region{
		RegionID:   id,
		RegionCode: EmbeddedRegionCode,
		RegionName: "tsconnect embedded relay",
		Nodes: []*derpws.Node{{
			Name:             strconv.Itoa(id) + "a",
			RegionID:         id,
			HostName:         server.Hostname(),
			IPv4:             ipv4,
			DERPPort:         port,
			STUNPort:         stunPort,
			InsecureForTests: server.Scheme == "http",
		}},
	}
	return m
}
