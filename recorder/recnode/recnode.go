// Package recnode runs a recorder as a node of the network: it joins with the node code the
// agent uses and serves a recorder.Store on overlay port 8410 to the peers allowed there.
package recnode

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	"tsconnect/controlws"
	"tsconnect/node"
	"tsconnect/policy/rules"
	"tsconnect/recorder"
)

// Config configures a recorder node.
type Config struct {
	ControlURL, AuthKey, Hostname string
	// StateDir keeps the node's keys; Storage the recordings (default StateDir/recordings).
	StateDir, Storage string
	// Store configures the recordings' store (quota, free-space floor, retention).
	Store recorder.Options
	// Logf, if non-nil, receives log lines.
	Logf func(format string, args ...any)
}

// Recorder is a running recorder node.
type Recorder struct {
	node  *node.Node
	store *recorder.Store
	srv   *recorder.Server
	done  chan struct{}
	serve chan error

	closeOnce sync.Once
	closeErr  error

	mu      sync.Mutex
	viewers map[int64]viewerEntry // by node ID: control's yes, until it expires
}

// Start opens the store, joins the network and serves on overlay port recorder.Port.
func Start(ctx context.Context, cfg Config) (*Recorder, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("recnode: a state dir is required")
	}
	if cfg.Storage == "" {
		cfg.Storage = cfg.StateDir + "/recordings"
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	cfg.Store.Logf = logf
	st, err := recorder.Open(cfg.Storage, cfg.Store)
	if err != nil {
		return nil, err
	}
	hostname := cfg.Hostname
	if hostname == "" {
		hostname, _ = os.Hostname()
	}
	n, err := node.New(node.Options{ControlURL: cfg.ControlURL, AuthKey: cfg.AuthKey, Hostname: hostname, StateDir: cfg.StateDir, Logf: logf})
	if err != nil {
		return nil, err
	}
	if err := n.Start(ctx); err != nil {
		n.Close()
		return nil, err
	}
	ln, err := n.Listen(recorder.Port)
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("recnode: listening on overlay port %d: %w", recorder.Port, err)
	}
	r := &Recorder{node: n, store: st, done: make(chan struct{}), serve: make(chan error, 1), viewers: map[int64]viewerEntry{}}
	r.srv = recorder.NewServer(st, r.authorize, logf)
	go func() { r.serve <- r.srv.Serve(ln) }()
	go st.RunSweeper(r.done)
	return r, nil
}

// authorize lets a peer record or view when it is a node of this network that this node's
// packet filter lets reach the recorder port (the acls; the packet filter has already
// dropped anything else, this names the node and checks again). Recording also needs a
// node whose ssh rules name this recorder (checkSender); viewing a node owned by a user
// control says may view (viewer).
func (r *Recorder) authorize(ctx context.Context, remote netip.AddrPort, a recorder.Access) (recorder.Peer, error) {
	nm := r.node.NetMap()
	if nm == nil {
		return recorder.Peer{}, errors.New("the recorder has no network map yet")
	}
	peer, ok := nm.PeerByAddr(remote.Addr())
	if !ok {
		return recorder.Peer{}, fmt.Errorf("%s is not a node of this network", remote.Addr())
	}
	allowed := false
	for _, self := range nm.Self.Addresses {
		if nm.PacketFilter != nil && self.Addr().BitLen() == remote.Addr().Unmap().BitLen() &&
			nm.PacketFilter.Allows(remote.Addr(), netip.AddrPortFrom(self.Addr(), recorder.Port), rules.ProtoTCP) {
			allowed = true
		}
	}
	if !allowed {
		return recorder.Peer{}, fmt.Errorf("the policy does not let node %s reach this recorder", peer.Name)
	}
	if a != recorder.Record {
		user, err := r.viewer(ctx, peer)
		if err != nil {
			return recorder.Peer{}, err
		}
		return recorder.Peer{Node: peer.Name, User: user}, nil
	}
	if err := checkSender(nm, r.node.MapVersion(), remote.Addr(), peer.Name); err != nil {
		return recorder.Peer{}, err
	}
	return recorder.Peer{Node: peer.Name}, nil
}

// Bounds of the viewer cache.
const (
	viewerTTL     = 10 * time.Second // how long control's yes is believed
	refusedTTL    = 2 * time.Second  // and its no (so a refused peer's requests do not each ask control)
	viewerTimeout = 5 * time.Second  // how long control is given to answer
	maxViewers    = 1024             // cached answers at most (then the cache starts over)
)

type viewerEntry struct {
	user   string // who, when allowed
	reason string // why not, when refused
	until  time.Time
}

// viewer asks control whether peer's owner may view recordings (admins and the policy's
// recordingViewers), believing a yes for viewerTTL and a no for refusedTTL. A tagged peer,
// control unreachable or a no refuses.
func (r *Recorder) viewer(ctx context.Context, peer controlws.Node) (string, error) {
	if len(peer.Tags) > 0 || peer.User == 0 {
		return "", fmt.Errorf("node %s is tagged: only a user's node may view recordings", peer.Name)
	}
	now := time.Now()
	r.mu.Lock()
	e, ok := r.viewers[peer.ID]
	r.mu.Unlock()
	if ok && now.Before(e.until) {
		if e.reason != "" {
			return "", errors.New(e.reason)
		}
		return e.user, nil
	}
	ctx, cancel := context.WithTimeout(ctx, viewerTimeout)
	defer cancel()
	ans, err := r.node.RecordingViewer(ctx, peer.ID)
	if err != nil {
		return "", fmt.Errorf("cannot ask control who may view recordings: %v", err)
	}
	e = viewerEntry{user: ans.User, until: now.Add(viewerTTL)}
	if !ans.Allowed {
		e = viewerEntry{reason: ans.Reason, until: now.Add(refusedTTL)}
		if e.reason == "" {
			e.reason = "control says no"
		}
	}
	r.mu.Lock()
	if len(r.viewers) >= maxViewers {
		clear(r.viewers)
	}
	r.viewers[peer.ID] = e
	r.mu.Unlock()
	if e.reason != "" {
		return "", errors.New(e.reason)
	}
	return e.user, nil
}

// Node is the recorder's node.
func (r *Recorder) Node() *node.Node { return r.node }

// Store is the recorder's store.
func (r *Recorder) Store() *recorder.Store { return r.store }

// Close stops serving (uploads in progress end as broken) and leaves the network. Closing
// again does nothing.
func (r *Recorder) Close() error {
	r.closeOnce.Do(func() {
		close(r.done)
		r.srv.Close()
		r.closeErr = <-r.serve
		if cerr := r.node.Close(); r.closeErr == nil {
			r.closeErr = cerr
		}
	})
	return r.closeErr
}
