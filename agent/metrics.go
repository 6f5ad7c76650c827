package agent

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	descSSHConns    = prometheus.NewDesc("tsconnect_agent_ssh_connections", "Logged-in SSH connections to the agent's server.", nil, nil)
	descSSHSessions = prometheus.NewDesc("tsconnect_agent_ssh_sessions", "Open SSH sessions (shells, commands, SFTP) on those connections.", nil, nil)
	descRelayUp     = prometheus.NewDesc("tsconnect_agent_relay_home_up", "1 while the connection to the home DERP relay is up.", nil, nil)
	descRelayHome   = prometheus.NewDesc("tsconnect_agent_relay_home_region", "The home DERP region.", nil, nil)
	descRelayPkts   = prometheus.NewDesc("tsconnect_agent_relay_packets_total", "Packets through the home relay, by direction.", []string{"direction"}, nil)
	descRelayDrops  = prometheus.NewDesc("tsconnect_agent_relay_drops_total", "Packets dropped on the way to or from the home relay, by direction.", []string{"direction"}, nil)
	descMapAge      = prometheus.NewDesc("tsconnect_agent_map_age_seconds", "How old the network map is: about 0 while the map stream with control is up.", nil, nil)
	descAuditQueued = prometheus.NewDesc("tsconnect_agent_ssh_audit_queued", "SSH login decisions waiting to be sent to control.", nil, nil)
	descPathPkts    = prometheus.NewDesc("tsconnect_agent_path_packets_total", "WireGuard packets by path (direct UDP or the relay) and direction; only with direct paths on.", []string{"path", "direction"}, nil)
	descDiscoDrops  = prometheus.NewDesc("tsconnect_agent_disco_dropped_total", "Disco messages refused (too big, over a source's rate, unknown key, not opening, replayed, answering no ping) and UDP data from unknown addresses; only with direct paths on.", []string{"kind"}, nil)
	descThrottled   = prometheus.NewDesc("tsconnect_agent_disco_pings_throttled_total", "Pings not sent over the per-peer or per-node ping rate, and disco messages from addresses not yet proven for their peer dropped unopened over the unproven rate; only with direct paths on.", nil, nil)
	descAuditDrops  = prometheus.NewDesc("tsconnect_agent_ssh_audit_dropped_total", "SSH login decisions never sent to control: the queue was full (its oldest went), a record was malformed, or the journal read back at start held more than the queue keeps.", nil, nil)
)

// Collector returns a Prometheus collector of the agent's metrics.
func (a *Agent) Collector() prometheus.Collector { return (*agentCollector)(a) }

type agentCollector Agent

func (c *agentCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSSHConns, descSSHSessions, descRelayUp, descRelayHome, descRelayPkts, descRelayDrops, descMapAge, descAuditQueued, descAuditDrops, descPathPkts, descDiscoDrops, descThrottled} {
		ch <- d
	}
	(*Agent)(c).revocations.Describe(ch)
	(*Agent)(c).recFailures.Describe(ch)
}

func (c *agentCollector) Collect(ch chan<- prometheus.Metric) {
	a := (*Agent)(c)
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	a.mu.Lock()
	srv := a.sshSrv
	a.mu.Unlock()
	var conns, sessions int
	if srv != nil {
		conns, sessions = srv.Counts()
	}
	gauge(descSSHConns, float64(conns))
	gauge(descSSHSessions, float64(sessions))
	a.revocations.Collect(ch)
	a.recFailures.Collect(ch)
	up := 0.0
	if a.node.HomeUp() {
		up = 1
	}
	gauge(descRelayUp, up)
	gauge(descRelayHome, float64(a.node.HomeRegion()))
	if st, ok := a.node.RelayStats(); ok {
		counter(descRelayPkts, st.PacketsSent, "sent")
		counter(descRelayPkts, st.PacketsReceived, "received")
		counter(descRelayDrops, st.SendDrops, "sent")
		counter(descRelayDrops, st.RecvDrops, "received")
	}
	gauge(descAuditQueued, float64(a.audit.len()))
	counter(descAuditDrops, a.audit.dropped.Load())
	if a.paths != nil {
		st := a.paths.Stats()
		counter(descPathPkts, st.DirectSent, "direct", "sent")
		counter(descPathPkts, st.DirectRecv, "direct", "received")
		counter(descPathPkts, st.RelaySent, "relay", "sent")
		counter(descDiscoDrops, st.DiscoDropped, "disco")
		counter(descDiscoDrops, st.DataDropped, "data")
		counter(descThrottled, st.PingsThrottled)
	}
	if age, ok := a.mapAge(); ok {
		gauge(descMapAge, age.Seconds())
	}
}
