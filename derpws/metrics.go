//go:build !js

package derpws

import (
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
)

// serverMetrics are a relay's totals over all clients.
type serverMetrics struct {
	clients                       atomic.Int64 // live client connections (mesh peers not counted)
	packetsIn, bytesIn            atomic.Uint64
	packetsOut, bytesOut          atomic.Uint64
	forwardedOut, forwardedIn     atomic.Uint64
	dropQueueFull, dropWriteError atomic.Uint64
	dropDisconnected              atomic.Uint64
	dropFairShare                 atomic.Uint64 // a heavier source's packet dropped for a lighter one's
	throttled                     atomic.Uint64 // pauses of a client's reader for its rate limit
	badFrames, frameTimeouts      atomic.Uint64 // connections closed for a malformed or stalled frame
	connsRefused                  atomic.Uint64 // connections refused at MaxConns
	dropUnknownDest               atomic.Uint64
	dropUnknownForward            atomic.Uint64
	handshakeFailures, refused    atomic.Uint64
	meshRefused, meshConnects     atomic.Uint64
}

// WriteMetrics writes the relay's counters in the Prometheus text format.
func (s *Server) WriteMetrics(w io.Writer) {
	s.mu.RLock()
	nfwd, nwatch, nmesh := len(s.fwd), len(s.watchers), len(s.mesh)
	var npref uint64
	for _, c := range s.clients {
		if c.preferred.Load() {
			npref++
		}
	}
	s.mu.RUnlock()
	m := &s.m
	type metric struct {
		name, typ, help string
		labels          string
		v               uint64
	}
	list := []metric{
		{"derp_clients", "gauge", "Client connections (mesh peers not counted).", "", uint64(max(m.clients.Load(), 0))},
		{"derp_clients_home", "gauge", "Clients that call this relay their home (NotePreferred).", "", npref},
		{"derp_mesh_peers_configured", "gauge", "Peer relays this relay meshes with.", "", uint64(nmesh)},
		{"derp_mesh_watchers", "gauge", "Peer relays watching this relay's clients.", "", uint64(nwatch)},
		{"derp_mesh_remote_clients", "gauge", "Clients reachable through peer relays.", "", uint64(nfwd)},
		{"derp_mesh_connects_total", "counter", "Connections made to peer relays.", "", m.meshConnects.Load()},
		{"derp_packets_received_total", "counter", "Packets received from clients.", "", m.packetsIn.Load()},
		{"derp_bytes_received_total", "counter", "Packet bytes received from clients.", "", m.bytesIn.Load()},
		{"derp_packets_sent_total", "counter", "Packets written to clients.", "", m.packetsOut.Load()},
		{"derp_bytes_sent_total", "counter", "Packet bytes written to clients.", "", m.bytesOut.Load()},
		{"derp_packets_forwarded_out_total", "counter", "Packets forwarded to peer relays.", "", m.forwardedOut.Load()},
		{"derp_packets_forwarded_in_total", "counter", "Packets forwarded from peer relays.", "", m.forwardedIn.Load()},
		{"derp_packets_dropped_total", "counter", "Packets dropped, by reason.", `reason="queue_full"`, m.dropQueueFull.Load()},
		{"derp_packets_dropped_total", "counter", "", `reason="fair_share"`, m.dropFairShare.Load()},
		{"derp_packets_dropped_total", "counter", "", `reason="write_error"`, m.dropWriteError.Load()},
		{"derp_packets_dropped_total", "counter", "", `reason="disconnected"`, m.dropDisconnected.Load()},
		{"derp_packets_dropped_total", "counter", "", `reason="unknown_dest"`, m.dropUnknownDest.Load()},
		{"derp_packets_dropped_total", "counter", "", `reason="unknown_dest_forwarded"`, m.dropUnknownForward.Load()},
		{"derp_handshake_failures_total", "counter", "Connections that failed the handshake.", "", m.handshakeFailures.Load()},
		{"derp_client_throttled_total", "counter", "Pauses in reading a client that went over its rate limit.", "", m.throttled.Load()},
		{"derp_conns_closed_total", "counter", "Client connections closed by the relay, by reason.", `reason="bad_frame"`, m.badFrames.Load()},
		{"derp_conns_closed_total", "counter", "", `reason="frame_timeout"`, m.frameTimeouts.Load()},
		{"derp_conns_refused_total", "counter", "Connections refused because the relay had MaxConns.", "", m.connsRefused.Load()},
		{"derp_clients_refused_total", "counter", "Clients refused admission.", "", m.refused.Load()},
		{"derp_mesh_refused_total", "counter", "Mesh frames or mesh keys refused.", "", m.meshRefused.Load()},
	}
	for _, x := range list {
		if x.help != "" {
			fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", x.name, x.help, x.name, x.typ)
		}
		if x.labels != "" {
			fmt.Fprintf(w, "%s{%s} %d\n", x.name, x.labels, x.v)
		} else {
			fmt.Fprintf(w, "%s %d\n", x.name, x.v)
		}
	}
}

// MetricsHandler serves WriteMetrics over HTTP (mount it at /debug/metrics).
func (s *Server) MetricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		s.WriteMetrics(w)
	})
}
