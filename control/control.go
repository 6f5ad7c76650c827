// Package control is the coordination server: it registers nodes with auth keys, hands out
// overlay addresses, streams network maps, embeds a DERP relay and serves the admin API.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"tsconnect/control/store"
	"tsconnect/control/store/sqlitestore"
	"tsconnect/controlws"
	"tsconnect/derpws"
	"tsconnect/key"
	"tsconnect/policy"
)

// DefaultEphemeralGrace is how long an ephemeral node may stay disconnected before it is deleted.
const DefaultEphemeralGrace = 30 * time.Second

// MaxEphemeralGrace is the longest EphemeralGrace accepted.
const MaxEphemeralGrace = 60 * time.Second

// DefaultDomain names the network when Config.Domain is empty.
const DefaultDomain = "tsc.internal"

// DBFile is the name of the SQLite database inside the state directory.
const DBFile = "control.db"

// Config configures a Server. The zero value of every field but StateDir and ServerURL means its default.
type Config struct {
	// StateDir holds the database and the admin socket; it is created (mode 0700) if missing.
	StateDir string
	// ServerURL is the public base URL of the server (http://host:port or https://host),
	// used for the embedded relay's entry in the DERP map and for links.
	ServerURL string
	// Logf logs; nil means no logging.
	Logf func(format string, args ...any)
	// Now is the server's clock (expiry, lifetimes, rate windows); nil means time.Now.
	Now func() time.Time
	// EphemeralGrace is how long an ephemeral node may stay disconnected before it is
	// deleted; 0 means DefaultEphemeralGrace, more than MaxEphemeralGrace is an error.
	EphemeralGrace time.Duration
	// EmbeddedDERP serves a DERP relay at /derp as region 1 of the DERP map. The relay is
	// embedded also when DERPMap is nil, since a network without any relay is never useful:
	// so the zero Config runs it, and EmbeddedDERP matters only next to an external map.
	EmbeddedDERP bool
	// RelayAddr is the address (ip:port) the other replicas on a shared store reach this
	// one's embedded relay at, dialled with ServerURL's name for TLS and Host: replicas
	// behind one public name (a load balancer, or a DNS name of several addresses) each
	// mesh with the others' own addresses. Empty means the name of ServerURL.
	RelayAddr string
	// DERPMap is an external DERP map, optional. Its regions are served as they are; the
	// embedded relay, when on, takes region 1 (or the next free ID if the map uses 1).
	DERPMap *derpws.Map
	// STUN, when set with the embedded relay, is the UDP socket on which the relay answers
	// STUN binding requests (derpws.ServeSTUN), so nodes learn their public address; its
	// port goes into the relay's map entry. The server serves it and closes it on Close.
	// Nil: no STUN (STUNPort -1 in the map).
	STUN net.PacketConn
	// STUNAddr, if an IPv4 address, is where nodes send STUN to (the relay entry's IPv4)
	// when they reach the STUN socket elsewhere than at the control URL's host: a relay
	// whose name resolves to another address than its STUN one, or a test's network
	// namespace. Zero: the URL's host.
	STUNAddr netip.Addr
	// Web is served at "/" and every path no other route claims; nil serves a tiny page.
	Web http.Handler
	// Domain names the network in maps; empty means DefaultDomain.
	Domain string
	// AuditRetention, if positive, is how long the audit log keeps an event: older ones are
	// deleted by a sweep (hourly, or every tenth of the retention when shorter) that one
	// replica at a time runs. 0 keeps them all; under MinAuditRetention is an error.
	AuditRetention time.Duration
	// Store, when set, is the store used instead of the SQLite file DBFile in StateDir
	// (e.g. a pgstore). Close closes it; when New fails, the caller closes it (again).
	Store store.Store
}

// Server is a coordination server. Create it with New; Close it when done.
type Server struct {
	cfg     Config
	logf    func(string, ...any)
	st      store.Store
	m       *serverMetrics // metrics.go
	priv    key.Private    // Noise static key
	derpKey key.Private    // embedded relay's key
	ula     netip.Prefix
	derpMap *derpws.Map
	relay   Relay          // nil when not embedded
	stun    net.PacketConn // Config.STUN, served while relay is
	handler http.Handler

	// writeMu serializes every mutation: store transaction, cache update and publish happen
	// as one step, so streams see changes in commit order.
	writeMu sync.Mutex
	addrs4  addrBlock // the IPv4 offsets this replica reserved (addrs.go), under writeMu

	mu    sync.RWMutex // guards the fields below
	nodes map[int64]*liveNode
	// sshLogins are the live SSH logins the agents connected here report (sshsessions.go).
	sshLogins sshLogins
	byKey     map[key.Public]int64 // node key → node ID (live nodes)
	names     map[string]int64
	addrs     map[netip.Addr]int64
	users     map[int64]controlws.UserProfile
	groups    map[int64][]string             // user ID → groups at the identity provider (oidc_users.go)
	streams   map[int64]map[*stream]struct{} // node ID → its map streams
	// elsewhere: node ID → the other replicas it streams from → when last heard (presence.go)
	elsewhere map[int64]map[string]time.Time
	// stopGone: the nodes whose last stream here ended while this replica stops, announced
	// gone together at the end of Close (presence.go)
	stopGone []int64
	conns    map[*nodeConn]struct{}
	closed   bool
	// policy is in force; policyVer describes it. gen counts changes that can change
	// compiled rules or peer visibility (policy, nodes' addresses, owners, tags, users).
	policy    *policy.Policy
	policyVer PolicyVersion
	gen       uint64
	rc        rulesCache    // the policy compiled at some gen; its own lock
	pubq      pubQueue      // registrations and new streams to publish (publishLoop)
	opens     streamOpens   // map requests waiting for their stream (streamopen.go); its own lock
	pokedGen  atomic.Uint64 // the gen publishes last poked rule changes for (stream.go)
	fullMaps  chan struct{} // a slot per full map being built or sent (maxFullMapsAtOnce)
	derpJSON  []byte        // derpMap encoded, as every full map holds it
	flows     flows         // pending SSH checks and interactive logins (check.go, login.go); its own lock
	updates   nodeLimits    // host-info update rate per node (updaterate.go); its own lock
	auditRate nodeLimits    // SSH audit records per node (sshaudit.go); its own lock
	keyTimer  keyTimer      // wakes control when the soonest node key expires (keyexpiry.go); its own lock

	changes  changeHub     // WatchChanges' watchers
	remote   remoteChanges // other replicas' changes not applied yet (replicas.go)
	origin   string        // this replica's name in announcements and leases; "" unshared
	meshed   meshPeers     // the other replicas' relays the embedded one meshes with (mesh.go)
	replURLs replicaURLs   // the replicas' control URLs that maps list (replicaurls.go)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	now    func() time.Time
}

// liveNode is the cached form of a live node.
type liveNode struct {
	n         controlws.Node // Online and LastSeen filled when read
	loggedOut bool           // in no map: logged out, or its key expired
	// keyExpired: the node is logged in but its key expired (it must re-authenticate).
	keyExpired bool
	// js is n as peers get it (Online filled), encoded once; cleared when Online changes.
	js atomic.Pointer[[]byte]
	// prevPeers, when set, are the peers the node saw before a change of how the policy
	// sees it (publishChanged tells them too, then clears it).
	prevPeers atomic.Pointer[[]int64]
}

// New opens (or creates) the state in cfg.StateDir and returns a running server: the
// ephemeral sweeper runs; nothing listens until the caller serves Handler and ServeAdmin.
func New(cfg Config) (*Server, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("control: Config.StateDir is required")
	}
	if cfg.EphemeralGrace == 0 {
		cfg.EphemeralGrace = DefaultEphemeralGrace
	}
	if cfg.EphemeralGrace < 0 || cfg.EphemeralGrace > MaxEphemeralGrace {
		return nil, fmt.Errorf("control: ephemeral grace %v out of range (0, %v]", cfg.EphemeralGrace, MaxEphemeralGrace)
	}
	if cfg.AuditRetention < 0 || (cfg.AuditRetention > 0 && cfg.AuditRetention < MinAuditRetention) {
		return nil, fmt.Errorf("control: audit retention %v: want 0 (keep all) or at least %v", cfg.AuditRetention, MinAuditRetention)
	}
	if cfg.Domain == "" {
		cfg.Domain = DefaultDomain
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	var su *url.URL
	if cfg.ServerURL != "" {
		var err error
		su, err = url.Parse(cfg.ServerURL)
		if err != nil || (su.Scheme != "http" && su.Scheme != "https") || su.Hostname() == "" {
			return nil, fmt.Errorf("control: ServerURL %q is not an http:// or https:// URL with a host", cfg.ServerURL)
		}
	}
	embedded := cfg.EmbeddedDERP || cfg.DERPMap == nil
	if embedded && su == nil {
		return nil, errors.New("control: Config.ServerURL is required for the embedded DERP relay's map entry")
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("control: state dir: %w", err)
	}
	st, err := cfg.Store, error(nil)
	if st == nil {
		if st, err = openSQLite(filepath.Join(cfg.StateDir, DBFile)); err != nil {
			return nil, err
		}
	}
	m := newServerMetrics()
	shared, origin := sharedStore(st)
	s := &Server{
		cfg:       cfg,
		logf:      cfg.Logf,
		st:        newTimedStore(shared, m),
		m:         m,
		nodes:     map[int64]*liveNode{},
		byKey:     map[key.Public]int64{},
		names:     map[string]int64{},
		addrs:     map[netip.Addr]int64{},
		users:     map[int64]controlws.UserProfile{},
		groups:    map[int64][]string{},
		streams:   map[int64]map[*stream]struct{}{},
		elsewhere: map[int64]map[string]time.Time{},
		conns:     map[*nodeConn]struct{}{},
		now:       cfg.Now,
		origin:    origin,
		fullMaps:  make(chan struct{}, maxFullMapsAtOnce),
		auditRate: nodeLimits{rate: rate.Limit(controlws.SSHAuditPerMinute) / 60, burst: controlws.SSHAuditPerMinute},
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.keyTimer.fire = s.expireDueKeys
	if err := s.init(); err != nil {
		s.keyTimer.stop()
		st.Close()
		return nil, err
	}
	if err := s.reviveOnline(); err != nil {
		st.Close()
		return nil, fmt.Errorf("control: ephemeral nodes: %w", err)
	}
	stunPort := -1
	if embedded && cfg.STUN != nil {
		if ua, ok := cfg.STUN.LocalAddr().(*net.UDPAddr); ok {
			stunPort = ua.Port
		}
	}
	s.derpMap = buildDERPMap(cfg.DERPMap, su, embedded, stunPort, cfg.STUNAddr)
	if s.derpJSON, err = json.Marshal(s.derpMap); err != nil {
		st.Close()
		return nil, fmt.Errorf("control: DERP map: %w", err)
	}
	if embedded {
		meshKey, err := s.replicaRelayKeys()
		if err != nil {
			st.Close()
			return nil, err
		}
		s.relay = newRelay(s.derpKey, s.verifyDERPClient, cfg.Logf, meshKey)
		if cfg.STUN != nil {
			s.stun = cfg.STUN
			go derpws.ServeSTUN(cfg.STUN, s.logf)
		}
	}
	s.handler = s.routes()
	s.listenReplicas(st, origin)
	s.wg.Add(3)
	go s.sweepLoop()
	go s.auditSweepLoop()
	s.pubq.wake = make(chan struct{}, 1)
	go s.publishLoop()
	return s, nil
}

// init loads or creates the network's settings and fills the caches from the store.
func (s *Server) init() error {
	ctx := context.Background()
	err := s.st.Update(ctx, func(tx store.Tx) error {
		var err error
		if s.priv, err = loadOrCreateKey(tx, settingServerKey); err != nil {
			return err
		}
		if s.derpKey, err = loadOrCreateKey(tx, settingDERPKey); err != nil {
			return err
		}
		if s.ula, err = loadOrCreateULA(tx); err != nil {
			return err
		}
		return backfillKeyExpiry(tx, s.now().UTC())
	})
	if err != nil {
		return fmt.Errorf("control: settings: %w", err)
	}
	return s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		if s.policy, s.policyVer, err = loadPolicy(tx); err != nil {
			return fmt.Errorf("control: policy: %w", err)
		}
		users, err := tx.Users()
		if err != nil {
			return err
		}
		for _, u := range users {
			s.users[u.ID] = profile(u)
			if len(u.Groups) > 0 {
				s.groups[u.ID] = u.Groups
			}
		}
		nodes, err := tx.Nodes()
		if err != nil {
			return err
		}
		for _, n := range nodes {
			s.cacheNode(n)
		}
		return nil
	})
}

// PublicKey returns the server's Noise static public key (what GET /key publishes).
func (s *Server) PublicKey() key.Public { return s.priv.Public() }

// DERPMap returns the DERP map nodes receive.
func (s *Server) DERPMap() *derpws.Map { return s.derpMap }

// Handler returns the HTTP handler: GET /key, the control WebSocket at controlws.Path, the
// embedded relay at /derp, /derp/probe and /derp/latency-check, and Config.Web for the rest.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops the server: it ends every control connection and map stream, stops the
// relay and the sweeper, and closes the store. It does not close listeners it did not open.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	conns := make([]*nodeConn, 0, len(s.conns))
	for nc := range s.conns {
		conns = append(conns, nc)
	}
	s.mu.Unlock()
	// Before the streams end: start-up gives the nodes online now their grace anew.
	if err := s.st.Update(context.Background(), func(tx store.Tx) error {
		if err := s.leaveReplicas(tx); err != nil {
			return err
		}
		return tx.SetSetting(settingStopping, strconv.FormatInt(s.now().UnixNano(), 10))
	}); err != nil {
		s.logf("control: recording the stop: %v", err)
	}
	s.cancel()
	if s.stun != nil {
		s.stun.Close()
	}
	s.keyTimer.stop()
	for _, nc := range conns {
		nc.close()
	}
	if s.relay != nil {
		s.relay.Close()
	}
	s.wg.Wait()
	s.announceStopGone()
	// Take writeMu so no mutation is half done when the store closes.
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.st.Close()
}

// openSQLite opens the default store, the SQLite file at dbPath.
func openSQLite(dbPath string) (store.Store, error) {
	// Create the file ourselves so that it (and SQLite's -wal and -shm, which copy its
	// mode) is private: it holds the server's private keys.
	f, err := os.OpenFile(dbPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("control: database: %w", err)
	}
	f.Close()
	st, err := sqlitestore.Open(dbPath)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	return st, nil
}
