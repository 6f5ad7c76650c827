//go:build !js

package derpws

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
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
	dropRelayFull                 atomic.Uint64 // dropped with the relay-wide queue budget spent
	throttled                     atomic.Uint64 // pauses of a client's reader for its rate limit
	badFrames, frameTimeouts      atomic.Uint64 // connections closed for a malformed or stalled frame
	connsRefused                  atomic.Uint64 // connections refused at MaxConns
	dropUnknownDest               atomic.Uint64
	dropUnknownForward            atomic.Uint64
	handshakeFailures, refused    atomic.Uint64
	meshRefused, meshConnects     atomic.Uint64
}

var (
	descClients      = newDesc("derp_clients", "Client connections (mesh peers not counted).", prometheus.GaugeValue, "")
	descClientsHome  = newDesc("derp_clients_home", "Clients that call this relay their home (NotePreferred).", prometheus.GaugeValue, "")
	descMeshPeers    = newDesc("derp_mesh_peers_configured", "Peer relays this relay meshes with.", prometheus.GaugeValue, "")
	descMeshWatchers = newDesc("derp_mesh_watchers", "Peer relays watching this relay's clients.", prometheus.GaugeValue, "")
	descMeshRemote   = newDesc("derp_mesh_remote_clients", "Clients reachable through peer relays.", prometheus.GaugeValue, "")
	descMeshConnects = newDesc("derp_mesh_connects_total", "Connections made to peer relays.", prometheus.CounterValue, "")
	descPacketsIn    = newDesc("derp_packets_received_total", "Packets received from clients.", prometheus.CounterValue, "")
	descBytesIn      = newDesc("derp_bytes_received_total", "Packet bytes received from clients.", prometheus.CounterValue, "")
	descPacketsOut   = newDesc("derp_packets_sent_total", "Packets written to clients.", prometheus.CounterValue, "")
	descBytesOut     = newDesc("derp_bytes_sent_total", "Packet bytes written to clients.", prometheus.CounterValue, "")
	descFwdOut       = newDesc("derp_packets_forwarded_out_total", "Packets forwarded to peer relays.", prometheus.CounterValue, "")
	descFwdIn        = newDesc("derp_packets_forwarded_in_total", "Packets forwarded from peer relays.", prometheus.CounterValue, "")
	descDropped      = newDesc("derp_packets_dropped_total", "Packets dropped, by reason.", prometheus.CounterValue, "reason")
	descHandshake    = newDesc("derp_handshake_failures_total", "Connections that failed the handshake.", prometheus.CounterValue, "")
	descThrottled    = newDesc("derp_client_throttled_total", "Pauses in reading a client that went over its rate limit.", prometheus.CounterValue, "")
	descClosed       = newDesc("derp_conns_closed_total", "Client connections closed by the relay, by reason.", prometheus.CounterValue, "reason")
	descQueuedBytes  = newDesc("derp_queued_bytes", "Packet buffer bytes queued for clients beyond each queue's 64 KiB reserve (bounded by MaxQueuedBytes).", prometheus.GaugeValue, "")
	descConnsRefused = newDesc("derp_conns_refused_total", "Connections refused because the relay had MaxConns.", prometheus.CounterValue, "")
	descRefused      = newDesc("derp_clients_refused_total", "Clients refused admission.", prometheus.CounterValue, "")
	descMeshRefused  = newDesc("derp_mesh_refused_total", "Mesh frames or mesh keys refused.", prometheus.CounterValue, "")
)

type desc struct {
	*prometheus.Desc
	typ prometheus.ValueType
}

func newDesc(name, help string, typ prometheus.ValueType, label string) desc {
	var labels []string
	if label != "" {
		labels = []string{label}
	}
	return desc{prometheus.NewDesc(name, help, labels, nil), typ}
}

// Collector returns a Prometheus collector of the relay's counters, read at each scrape.
func (s *Server) Collector() prometheus.Collector { return (*collector)(s) }

type collector Server

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []desc{descClients, descClientsHome, descMeshPeers, descMeshWatchers, descMeshRemote, descMeshConnects,
		descPacketsIn, descBytesIn, descPacketsOut, descBytesOut, descFwdOut, descFwdIn, descDropped, descHandshake,
		descThrottled, descClosed, descConnsRefused, descRefused, descMeshRefused, descQueuedBytes} {
		ch <- d.Desc
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := (*Server)(c)
	s.mu.RLock()
	nfwd, nwatch, nmesh := len(s.fwd), len(s.watchers), len(s.mesh)
	var npref uint64
	for _, cl := range s.clients {
		if cl.preferred.Load() {
			npref++
		}
	}
	s.mu.RUnlock()
	m := &s.m
	emit := func(d desc, v uint64, label ...string) {
		ch <- prometheus.MustNewConstMetric(d.Desc, d.typ, float64(v), label...)
	}
	emit(descClients, uint64(max(m.clients.Load(), 0)))
	emit(descClientsHome, npref)
	emit(descQueuedBytes, uint64(max(s.queued.queued(), 0)))
	emit(descMeshPeers, uint64(nmesh))
	emit(descMeshWatchers, uint64(nwatch))
	emit(descMeshRemote, uint64(nfwd))
	emit(descMeshConnects, m.meshConnects.Load())
	emit(descPacketsIn, m.packetsIn.Load())
	emit(descBytesIn, m.bytesIn.Load())
	emit(descPacketsOut, m.packetsOut.Load())
	emit(descBytesOut, m.bytesOut.Load())
	emit(descFwdOut, m.forwardedOut.Load())
	emit(descFwdIn, m.forwardedIn.Load())
	emit(descDropped, m.dropQueueFull.Load(), "queue_full")
	emit(descDropped, m.dropFairShare.Load(), "fair_share")
	emit(descDropped, m.dropRelayFull.Load(), "relay_queue_full")
	emit(descDropped, m.dropWriteError.Load(), "write_error")
	emit(descDropped, m.dropDisconnected.Load(), "disconnected")
	emit(descDropped, m.dropUnknownDest.Load(), "unknown_dest")
	emit(descDropped, m.dropUnknownForward.Load(), "unknown_dest_forwarded")
	emit(descHandshake, m.handshakeFailures.Load())
	emit(descThrottled, m.throttled.Load())
	emit(descClosed, m.badFrames.Load(), "bad_frame")
	emit(descClosed, m.frameTimeouts.Load(), "frame_timeout")
	emit(descConnsRefused, m.connsRefused.Load())
	emit(descRefused, m.refused.Load())
	emit(descMeshRefused, m.meshRefused.Load())
}
