package control

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"tsconnect/control/store"
)

// serverMetrics are control's counters and histograms, updated where the work happens; the
// gauges (nodes, streams, check holds) are read from the server's state at each scrape.
type serverMetrics struct {
	mapSends prometheus.Counter
	mapBytes prometheus.Counter
	compile  prometheus.Histogram
	auth     *prometheus.CounterVec // kind, method, result
	// auditLimited counts SSH audit records not stored (yet): their node's rate was spent.
	auditLimited prometheus.Counter
	storeTimes   *prometheus.HistogramVec
}

func newServerMetrics() *serverMetrics {
	return &serverMetrics{
		mapSends: prometheus.NewCounter(prometheus.CounterOpts{Name: "tsconnect_control_map_sends_total",
			Help: "Map messages (full maps and deltas) sent to nodes."}),
		mapBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "tsconnect_control_map_bytes_total",
			Help: "Bytes of map messages sent to nodes, before encryption."}),
		compile: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tsconnect_control_policy_compile_seconds",
			Help: "Time to compile the policy for the nodes a change concerns.", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}),
		auth: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tsconnect_control_authentications_total",
			Help: "Authentications in the audit log (console sign-ins, checks, node logins), by kind, method and result."},
			[]string{"kind", "method", "result"}),
		auditLimited: prometheus.NewCounter(prometheus.CounterOpts{Name: "tsconnect_control_ssh_audit_limited_total",
			Help: "SSH audit records an agent sent past its rate (controlws.SSHAuditPerMinute), not stored; it sends them again later."}),
		storeTimes: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tsconnect_control_store_seconds",
			Help: "Store transactions' latency, by read or update.", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)},
			[]string{"op"}),
	}
}

var (
	descNodes   = prometheus.NewDesc("tsconnect_control_nodes", "Registered nodes by state: key_expired (logged in, its key expired), else online (holds a map stream on any replica) or offline.", []string{"state"}, nil)
	descStreams = prometheus.NewDesc("tsconnect_control_map_streams", "Open map streams.", nil, nil)
	descHolds   = prometheus.NewDesc("tsconnect_control_check_holds", "SSH logins held on this server for a check (agents waiting for a verdict).", nil, nil)
	descLogins  = prometheus.NewDesc("tsconnect_control_pending_logins", "Interactive node logins waiting on this server for a sign-in.", nil, nil)
)

// Collector returns a Prometheus collector of control's metrics.
func (s *Server) Collector() prometheus.Collector { return (*serverCollector)(s) }

type serverCollector Server

func (c *serverCollector) Describe(ch chan<- *prometheus.Desc) {
	m := c.m
	m.mapSends.Describe(ch)
	m.mapBytes.Describe(ch)
	m.compile.Describe(ch)
	m.auth.Describe(ch)
	m.auditLimited.Describe(ch)
	m.storeTimes.Describe(ch)
	ch <- descNodes
	ch <- descStreams
	ch <- descHolds
	ch <- descLogins
}

func (c *serverCollector) Collect(ch chan<- prometheus.Metric) {
	s := (*Server)(c)
	m := s.m
	m.mapSends.Collect(ch)
	m.mapBytes.Collect(ch)
	m.compile.Collect(ch)
	m.auth.Collect(ch)
	m.auditLimited.Collect(ch)
	m.storeTimes.Collect(ch)
	s.mu.RLock()
	var online, offline, keyExpired, streams int
	for id, ln := range s.nodes {
		switch {
		case ln.keyExpired:
			keyExpired++
		case s.onlineLocked(id):
			online++
		default:
			offline++
		}
	}
	for _, sts := range s.streams {
		streams += len(sts)
	}
	s.mu.RUnlock()
	s.flows.mu.Lock()
	holds, logins := len(s.flows.checks), len(s.flows.logins)
	s.flows.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(online), "online")
	ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(offline), "offline")
	ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(keyExpired), "key_expired")
	ch <- prometheus.MustNewConstMetric(descStreams, prometheus.GaugeValue, float64(streams))
	ch <- prometheus.MustNewConstMetric(descHolds, prometheus.GaugeValue, float64(holds))
	ch <- prometheus.MustNewConstMetric(descLogins, prometheus.GaugeValue, float64(logins))
}

// timedStore is a store whose transactions' latency goes into the metrics.
type timedStore struct {
	store.Store
	read, update prometheus.Observer
}

func newTimedStore(st store.Store, m *serverMetrics) *timedStore {
	return &timedStore{Store: st, read: m.storeTimes.WithLabelValues("read"), update: m.storeTimes.WithLabelValues("update")}
}

func (t *timedStore) Read(ctx context.Context, fn func(store.Tx) error) error {
	defer observeSince(t.read, time.Now())
	return t.Store.Read(ctx, fn)
}

func (t *timedStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	defer observeSince(t.update, time.Now())
	return t.Store.Update(ctx, fn)
}

// BackupTo passes a backup through to the store, when it makes them.
func (t *timedStore) BackupTo(ctx context.Context, path string) error {
	bs, ok := t.Store.(backupStore)
	if !ok {
		return errNoBackups
	}
	return bs.BackupTo(ctx, path)
}

func observeSince(o prometheus.Observer, t0 time.Time) { o.Observe(time.Since(t0).Seconds()) }
