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
	r := &Recorder{node: n, store: st, done: make(chan struct{}), serve: make(chan error, 1)}
	r.srv = recorder.NewServer(st, r.authorize, logf)
	go func() { r.serve <- r.srv.Serve(ln) }()
	go st.RunSweeper(r.done)
	return r, nil
}

// authorize lets a peer record when it is a node of this network that this node's packet
// filter lets reach the recorder port (the acls; the packet filter has already dropped
// anything else, this names the node and checks again) and whose ssh rules name this
// recorder (checkSender). Viewing over the overlay is refused until the console's path to
// recordings exists.
func (r *Recorder) authorize(_ context.Context, remote netip.AddrPort, a recorder.Access) (recorder.Peer, error) {
	nm := r.node.NetMap()
	if nm == nil {
		return recorder.Peer{}, errors.New("the recorder has no network map yet")
	}
	peer, ok := nm.PeerByAddr(remote.Addr())
	if !ok {
		return recorder.Peer{}, fmt.Errorf("%s is not a node of this network", remote.Addr())
	}
	if a != recorder.Record {
		return recorder.Peer{}, errors.New("viewing recordings over the overlay is not available yet")
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
	if err := checkSender(nm, r.node.MapVersion(), remote.Addr(), peer.Name); err != nil {
		return recorder.Peer{}, err
	}
	return recorder.Peer{Node: peer.Name}, nil
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
