package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"tsconnect/controlws"
	"tsconnect/internal/safetext"
	"tsconnect/magicbind"
)

// socketBuffer is the UDP socket's send and receive buffer size asked for.
const socketBuffer = 7 << 20

// openPaths opens the UDP socket of Config.UDPListen (or takes Config.UDPConn) and the
// direct-path layer on it; nil when neither is set (relay only).
func openPaths(cfg Config, logf func(string, ...any)) (*magicbind.Conn, error) {
	uc := cfg.UDPConn
	switch {
	case uc != nil && cfg.UDPListen != "":
		uc.Close()
		return nil, errors.New("agent: UDPListen and UDPConn are both set")
	case uc == nil && cfg.UDPListen == "":
		return nil, nil
	case uc == nil:
		ua, err := net.ResolveUDPAddr("udp", cfg.UDPListen)
		if err != nil {
			return nil, fmt.Errorf("agent: UDP address %q: %w", cfg.UDPListen, err)
		}
		network := "udp"
		if ua.IP != nil && ua.IP.To4() != nil {
			network = "udp4"
		}
		if uc, err = net.ListenUDP(network, ua); err != nil {
			return nil, fmt.Errorf("agent: UDP socket for direct paths: %w", err)
		}
	}
	// As wireguard-go's own sockets: room for bursts (the kernel caps it at rmem_max/wmem_max).
	uc.SetReadBuffer(socketBuffer)
	uc.SetWriteBuffer(socketBuffer)
	c, err := magicbind.New(magicbind.Options{PacketConn: uc, Interfaces: cfg.Interfaces, Logf: logf})
	if err != nil {
		uc.Close()
		return nil, err
	}
	return c, nil
}

// Paths returns the agent's direct-path layer, nil when it has none (no Config.UDPListen).
// Closing it puts every peer back on the relay.
func (a *Agent) Paths() *magicbind.Conn { return a.paths }

// PeerPath is how traffic to one peer goes, for status: direct to an endpoint, or relayed
// through a DERP region.
type PeerPath struct {
	// Direct is the peer's endpoint ("ip:port") while traffic goes there; "" when relayed.
	Direct string `json:"direct,omitempty"`
	// Region is the DERP region relayed traffic goes through (the peer's home), and
	// RegionCode its code from the map.
	Region     int    `json:"region,omitempty"`
	RegionCode string `json:"regionCode,omitempty"`
	// RTTMillis is the round-trip time of the last pong, 0 before any.
	RTTMillis float64 `json:"rttMs,omitempty"`
}

// peerPaths returns the path of each peer of nm by node key; nil without direct paths.
func (a *Agent) peerPaths(nm *controlws.NetworkMap) map[string]PeerPath {
	if a.paths == nil || nm == nil {
		return nil
	}
	out := make(map[string]PeerPath, len(nm.Peers))
	for _, p := range nm.Peers {
		out[p.Key.String()] = a.peerPath(nm, p)
	}
	return out
}

func (a *Agent) peerPath(nm *controlws.NetworkMap, p controlws.Node) PeerPath {
	pp := PeerPath{Region: p.HomeDERP, RegionCode: regionCode(nm, p.HomeDERP)}
	if a.paths == nil {
		return pp
	}
	path := a.paths.Path(p.Key)
	if path.Direct.IsValid() {
		pp.Direct = path.Direct.String()
	}
	pp.RTTMillis = millis(path.RTT)
	return pp
}

func regionCode(nm *controlws.NetworkMap, id int) string {
	if nm.DERPMap != nil {
		if r := nm.DERPMap.Regions[id]; r != nil {
			return r.RegionCode
		}
	}
	return ""
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// PingResult answers one round of `tsconnect ping`: the pongs that came within
// PingRoundTimeout, or up to the first direct one.
type PingResult struct {
	Name  string     `json:"name"`
	IP    string     `json:"ip"`
	Pongs []PingPong `json:"pongs"`
}

// PingPong is one pong: Direct is the endpoint that answered, "" through the relay
// (Region, RegionCode).
type PingPong struct {
	Direct     string  `json:"direct,omitempty"`
	Region     int     `json:"region,omitempty"`
	RegionCode string  `json:"regionCode,omitempty"`
	RTTMillis  float64 `json:"rttMs"`
}

// PingRoundTimeout bounds how long one ping round waits for pongs.
const PingRoundTimeout = time.Second

// servePing sends one round of disco pings to ?host= (a peer name or overlay address):
// through the relay and to each of its endpoints.
func (a *Agent) servePing(w http.ResponseWriter, r *http.Request) {
	host := r.URL.Query().Get("host")
	if host == "" || len(host) > 256 {
		httpError(w, http.StatusBadRequest, "ping needs a host: a peer name or overlay address")
		return
	}
	if a.paths == nil {
		httpError(w, http.StatusConflict, "this agent has no direct paths (start it with --udp-port): ping needs them")
		return
	}
	nm := a.node.NetMap()
	ip, err := a.node.ResolveAddr(host)
	if err != nil || nm == nil {
		httpError(w, http.StatusNotFound, fmt.Sprintf("ping: %v", err))
		return
	}
	peer, ok := nm.PeerByAddr(ip)
	if !ok {
		httpError(w, http.StatusNotFound, fmt.Sprintf("ping: no peer has address %v", ip))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), PingRoundTimeout)
	defer cancel()
	pongs, err := a.paths.Ping(peer.Key)
	switch {
	case errors.Is(err, magicbind.ErrNoDiscoKey):
		httpError(w, http.StatusConflict, fmt.Sprintf("ping: %s publishes no disco key (a browser, or an agent without --udp-port): it is reached through the relay only", safetext.Bounded(peer.Name, 64)))
		return
	case err != nil:
		httpError(w, http.StatusServiceUnavailable, fmt.Sprintf("ping: direct paths are off: %v", err))
		return
	}
	res := PingResult{Name: peer.Name, IP: ip.String(), Pongs: []PingPong{}}
wait:
	for {
		select {
		case p := <-pongs:
			pp := PingPong{RTTMillis: millis(p.RTT)}
			if p.Via.IsValid() {
				pp.Direct = p.Via.String()
			} else {
				pp.Region, pp.RegionCode = peer.HomeDERP, regionCode(nm, peer.HomeDERP)
			}
			res.Pongs = append(res.Pongs, pp)
			if pp.Direct != "" {
				break wait
			}
		case <-ctx.Done():
			break wait
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(res)
}
