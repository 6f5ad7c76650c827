package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"tsconnect/controlws"
	"tsconnect/derpws"
	"tsconnect/engine"
	"tsconnect/internal/backoff"
	"tsconnect/key"
)

// Options configures a Node. Zero fields take defaults.
type Options struct {
	// ControlURL is the control server's base URL, e.g. "http://127.0.0.1:8080".
	ControlURL string
	// ControlKey is the control server's public key; zero means fetch it from /key.
	ControlKey key.Public
	// AuthKey registers the node when this machine has none yet.
	AuthKey string
	// OnLoginURL, if non-nil, makes a node without AuthKey (and not registered yet) log in
	// interactively: it is called with the URL where a user signs in to own the node, and
	// Start waits (bounded by its ctx) until someone has. State is StateNeedsLogin meanwhile.
	OnLoginURL func(url string)
	// Ephemeral asks for an ephemeral node in an interactive login (an auth key decides
	// for itself).
	Ephemeral bool
	// Hostname is the name the node asks for; control makes it unique.
	Hostname string
	// OS is reported to control; "" means the Go runtime's.
	OS string
	// StateDir keeps the node's keys (node.json, 0600); "" keeps them in memory only.
	StateDir string
	// SSH reports that this node serves SSH on port 22, with SSHHostKeys.
	SSH         bool
	SSHHostKeys []string
	// SSHTools are the terminal multiplexers the node's SSH users can attach to (Hostinfo.SSHTools).
	SSHTools []string
	// VNC reports that this node forwards port 5900 to a VNC server (Hostinfo.VNC).
	VNC bool
	// Resolver looks the control URL's and the relays' host names up (native builds); nil
	// means net.DefaultResolver. A name of several addresses (replicas) is dialled at each in
	// turn, so the node reconnects through another when one dies (controlws.DialOptions,
	// derpws.ClientOptions).
	Resolver *net.Resolver
	// HTTPGet fetches a URL; the wasm passes one built on the browser's fetch.
	HTTPGet func(ctx context.Context, url string) ([]byte, error)
	// Logf, if non-nil, receives the node's log lines.
	Logf func(format string, args ...any)
	// OnState, if non-nil, is called on every state change.
	OnState func(State)
	// OnNetMap, if non-nil, is called with every new network map; the map is the caller's to keep.
	OnNetMap func(*controlws.NetworkMap)
	// Paths, if non-nil, carries WireGuard over direct UDP paths where peers answer
	// (paths.go); nil keeps every packet on the relay, and so does the browser.
	Paths Paths
	// RelayTimeout bounds how long Start waits for the home relay; 0 means 10 s.
	RelayTimeout time.Duration
}

// Node is a running member of the network.
type Node struct {
	opts Options
	logf func(format string, args ...any)
	id   *identity

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when the control loop ends

	firstMap  chan struct{} // closed on the first applied map
	relayUp   chan struct{} // closed when the home relay first connects
	startErrs chan error    // errors that end the control loop, for Start

	mu    sync.Mutex
	cc    *controlws.Client
	mapCC *controlws.Client // the connection whose map stream brought the latest map
	nm    *controlws.NetworkMap
	fresh mapFreshness // mapage.go
	// mapCount counts the maps applied, so the control loop tells a stream that worked from one that did not.
	mapCount atomic.Int64
	eng      *engine.Engine
	relay    *derpws.Multi
	relays   *relaySwitch // what the engine's Bind uses: relay, switched on a key rotation (rotate.go)
	parked   bool         // relay is an idle client while the node's key is expired (rotate.go)
	home     int          // home DERP region
	// endpoints are this node's UDP endpoints as Paths last found them (paths_native.go).
	endpoints []netip.AddrPort
	// target is the control URL the next dial goes to (controlurls.go); ccURL is cc's.
	target, ccURL string
	ringSeed      uint32 // where in the learned URLs this node's ring starts
	badURLsLogged bool
	state         State
	once          sync.Once // closes firstMap
	rOnce         sync.Once // closes relayUp
}

// New returns a Node that has loaded (or made) its keys; Start joins the network.
func New(opts Options) (*Node, error) {
	if opts.ControlURL == "" {
		return nil, errors.New("node: no control URL")
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if opts.OS == "" {
		opts.OS = runtime.GOOS
	}
	if opts.RelayTimeout == 0 {
		opts.RelayTimeout = 10 * time.Second
	}
	id, err := loadIdentity(opts.StateDir)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Node{
		opts: opts, logf: logf, id: id, ctx: ctx, cancel: cancel,
		done: make(chan struct{}), firstMap: make(chan struct{}), relayUp: make(chan struct{}),
		startErrs: make(chan error, 1), ringSeed: rand.Uint32(),
	}, nil
}

// NodeKey returns the node's public WireGuard/DERP key.
func (n *Node) NodeKey() key.Public { return n.nodeKey().Public() }

// nodeKey returns the node's private key, which Login may rotate.
func (n *Node) nodeKey() key.Private {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.id.NodeKey
}

// Start registers the node if needed, waits for its first network map and its home relay,
// and returns; the node then keeps following control, reconnecting, until Close.
// A refused auth key comes back as a *controlws.Error (errors.As) with its Code.
func (n *Node) Start(ctx context.Context) error {
	n.setState(StateStarting)
	cc, err := n.dialRound(ctx)
	if err != nil {
		n.setState(StateStopped)
		return fmt.Errorf("%w: %w", ErrControlUnreachable, err)
	}
	if cc, err = n.register(ctx, cc); err != nil {
		if cc != nil {
			cc.Close()
		}
		return err
	}
	n.settleNextKey(ctx, cc)
	go n.controlLoop(cc)
	select {
	case <-n.firstMap:
	case err := <-n.startErrs:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
	if nm := n.NetMap(); nm != nil && nm.Self.KeyExpired(time.Now()) {
		// No relay admits an expired key: run (for Login) without waiting for one.
		n.logf("node: this node's key expired at %s: re-authenticate it (tsconnect login)", nm.Self.KeyExpiry.UTC().Format(time.RFC3339))
		n.setState(StateKeyExpired)
		return nil
	}
	t := time.NewTimer(n.opts.RelayTimeout)
	defer t.Stop()
	select {
	case <-n.relayUp:
	case <-t.C:
		return fmt.Errorf("%w: no connection to %s within %v", ErrRelayUnreachable, n.relayURL(), n.opts.RelayTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
	n.setState(StateRunning)
	return nil
}

// dialControl dials the control URL of the ring that is next (controlurls.go).
func (n *Node) dialControl(ctx context.Context) (*controlws.Client, error) {
	target, serverKey := n.controlTarget()
	cc, err := controlws.Dial(ctx, controlws.DialOptions{
		ServerURL:  target,
		ServerKey:  serverKey,
		MachineKey: n.id.MachineKey,
		HTTPGet:    n.opts.HTTPGet,
		Resolver:   n.opts.Resolver,
		Logf:       n.logf,
	})
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	n.cc, n.ccURL = cc, target
	n.mu.Unlock()
	return cc, nil
}

func (n *Node) hostinfo() controlws.Hostinfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	return controlws.Hostinfo{
		Hostname: n.opts.Hostname, OS: n.opts.OS,
		SSH: n.opts.SSH, SSHHostKeys: n.opts.SSHHostKeys, SSHTools: n.opts.SSHTools, VNC: n.opts.VNC, HomeDERP: n.home,
		Endpoints: n.endpoints, DiscoKey: n.discoKey(),
	}
}

// register binds the node key to this machine, unless control already has. It returns the
// connection to go on with (an interactive login redials a control that dropped meanwhile),
// nil if there is none.
func (n *Node) register(ctx context.Context, cc *controlws.Client) (*controlws.Client, error) {
	if n.id.Registered {
		return cc, nil
	}
	req := controlws.RegisterRequest{AuthKey: n.opts.AuthKey, NodeKey: n.id.NodeKey.Public(), Hostinfo: n.hostinfo()}
	var err error
	switch {
	case n.opts.AuthKey != "":
		_, err = cc.Register(ctx, req)
	case n.opts.OnLoginURL != nil:
		req.Ephemeral = n.opts.Ephemeral
		cc, err = n.registerInteractive(ctx, cc, req)
		if err == nil {
			n.setState(StateStarting)
		}
	default:
		n.setState(StateNeedsLogin)
		return cc, errors.New("node: not registered and no auth key given")
	}
	if err != nil {
		n.setState(StateStopped)
		return cc, err
	}
	n.id.Registered = true
	return cc, n.id.save(n.opts.StateDir)
}

// registerInteractive waits for the user to sign in at the URL control hands out. When the
// connection to control is lost meanwhile, it redials (reconnect.go's back-off) and asks
// again: control answers that register too once the sign-in at the first URL is done, so
// the first URL stays the one shown while it has not expired (a restart of control keeps it).
func (n *Node) registerInteractive(ctx context.Context, cc *controlws.Client, req controlws.RegisterRequest) (*controlws.Client, error) {
	ctx, cancel := context.WithCancel(ctx) // ends with the node too
	defer cancel()
	defer context.AfterFunc(n.ctx, cancel)()
	var shown controlws.LoginURL
	retry := backoff.Backoff{Min: ReconnectMin, Max: ReconnectMax}
	for {
		_, err := cc.RegisterInteractive(ctx, req, func(u controlws.LoginURL) {
			if shown.URL != "" && time.Now().Before(shown.Expires) {
				n.logf("node: control is back; still waiting for the sign-in at the URL shown before")
				return
			}
			shown = u
			n.setState(StateNeedsLogin)
			n.logf("node: to join, sign in at %s", u.URL)
			n.opts.OnLoginURL(u.URL)
		})
		var ce *controlws.Error
		if err == nil || errors.As(err, &ce) || ctx.Err() != nil {
			return cc, err
		}
		n.logf("node: control connection lost while waiting for the sign-in: %v", err)
		cc.Close()
		if cc = n.redial(ctx, &retry, retry.Next()); cc == nil {
			return nil, fmt.Errorf("%w: waiting for the sign-in: %w", ErrControlUnreachable, ctx.Err())
		}
	}
}

// controlLoop follows the map stream, redialling control until Close, or until control
// says the node is gone: at once after a stream that brought a map, then with the jittered
// backoff of reconnect.go (at most ReconnectMax between tries), so the node is back within
// about that of control coming back. The node keeps its keys, so it comes back as the same node.
func (n *Node) controlLoop(cc *controlws.Client) {
	defer close(n.done)
	retry := backoff.Backoff{Min: ReconnectMin, Max: ReconnectMax}
	for {
		req := controlws.MapRequest{NodeKey: n.NodeKey(), Hostinfo: n.hostinfo()}
		maps := n.mapCount.Load()
		err := cc.WatchMaps(n.ctx, req, func(nm *controlws.NetworkMap) {
			n.mu.Lock()
			n.mapCC = cc
			n.mu.Unlock()
			n.applyMap(nm, cc.ServerKey())
		})
		n.mapStreamLost()
		cc.Close()
		if n.ctx.Err() != nil {
			return
		}
		var ce *controlws.Error
		if errors.As(err, &ce) && (ce.Code == controlws.CodeNodeDeleted || ce.Code == controlws.CodeNotRegistered) {
			n.logf("node: control ended this node: %v", err)
			n.fail(err)
			return
		}
		n.logf("node: control connection lost: %v", err)
		// A stream that brought a map was a success: retry at once. One that failed before
		// any map (control up but refusing) backs off, so it cannot become a busy loop.
		// Either way the next dial goes to the next control URL (controlurls.go) if this
		// stream brought nothing: a replica that answers but cannot serve is passed over.
		var delay time.Duration
		if n.mapCount.Load() > maps {
			retry.Reset()
		} else {
			delay = retry.Next()
			n.nextControlTarget()
		}
		cc = n.redial(n.ctx, &retry, delay)
		if cc == nil {
			return
		}
	}
}

// fail ends the node after control refused it.
func (n *Node) fail(err error) {
	select {
	case n.startErrs <- err:
	default:
	}
	n.closeData()
	n.setState(StateStopped)
}

// applyMap makes the data path match nm. It runs on the control client's read loop.
func (n *Node) applyMap(nm *controlws.NetworkMap, server key.Public) {
	n.mapCount.Add(1)
	n.mu.Lock()
	n.nm = nm
	n.learnControlURLsLocked(nm.ControlURLs, server)
	n.fresh.streamUp = true
	err := n.ensureEngineLocked(nm)
	if err == nil {
		// The filter first: new peers must not get in under the old, wider one.
		n.eng.SetFilter(nm.PacketFilter)
		err = n.eng.SetAddresses(nm.Self.Addresses)
	}
	if err == nil {
		peers := make([]engine.Peer, 0, len(nm.Peers))
		for _, p := range nm.Peers {
			peers = append(peers, engine.Peer{Key: p.Key, AllowedIPs: p.Addresses})
		}
		err = n.eng.SetPeers(peers)
		n.setPathPeers(nm.Peers)
	}
	if n.relay != nil {
		n.relay.SetMap(nm.DERPMap)
		n.relay.SetPeerRegions(peerRegions(nm))
		n.parkRelayLocked(nm.Self.KeyExpired(time.Now()))
	}
	n.mu.Unlock()
	if err != nil {
		n.logf("node: applying network map: %v", err)
	}
	n.once.Do(func() { close(n.firstMap) })
	switch expired := nm.Self.KeyExpired(time.Now()); {
	case expired && n.State() == StateRunning:
		n.logf("node: this node's key expired at %s: re-authenticate it (tsconnect login)", nm.Self.KeyExpiry.UTC().Format(time.RFC3339))
		n.setState(StateKeyExpired)
	case !expired && n.State() == StateKeyExpired: // an admin disabled its expiry
		n.setState(StateRunning)
	}
	if n.opts.OnNetMap != nil {
		n.opts.OnNetMap(nm)
	}
}

// ensureEngineLocked starts the relay client and the WireGuard engine on the first map.
func (n *Node) ensureEngineLocked(nm *controlws.NetworkMap) error {
	if n.eng != nil {
		return nil
	}
	// Start on the lowest region at once; pickHome moves to the fastest once measured.
	home := derpws.PickHome(nm.DERPMap, nil)
	if home == 0 {
		return errors.New("node: the network map names no DERP relay")
	}
	n.home = home
	n.relay = n.newRelayLocked(n.id.NodeKey, nm.DERPMap, home)
	n.relay.Start()
	n.relays = &relaySwitch{cur: n.relay}
	eng, err := engine.New(engine.Config{
		PrivateKey: n.id.NodeKey,
		Bind:       n.newBindLocked(),
		Logf:       n.logf,
	})
	if err != nil {
		n.relay.Close()
		n.relay = nil
		return err
	}
	n.eng = eng
	// Tell control where we are reachable; not from this goroutine, which must
	// keep reading the control stream for the answer to arrive.
	n.startPaths() // reports home, with the endpoints when there are paths
	if len(nm.DERPMap.Regions) > 1 {
		go n.pickHome(nm.DERPMap)
	}
	go n.watchHome()
	return nil
}

// reportHome sends control the node's hostinfo with its home region.
func (n *Node) reportHome() {
	n.mu.Lock()
	cc := n.cc
	n.mu.Unlock()
	if err := cc.Update(n.ctx, n.hostinfo()); err != nil && n.ctx.Err() == nil {
		n.logf("node: reporting home relay: %v", err)
	}
}

// pickHome measures the regions of dm (GET /derp/probe) and moves home to the fastest; it
// says whether home moved.
func (n *Node) pickHome(dm *derpws.Map) bool {
	lat := derpws.ProbeRegions(n.ctx, dm, n.opts.HTTPGet)
	best := derpws.PickHome(dm, lat)
	n.mu.Lock()
	cur := n.home
	n.mu.Unlock()
	if best == cur || len(lat) == 0 {
		return false
	}
	n.logf("node: home relay region %d (%v), was %d", best, lat[best], cur)
	return n.setHome(best)
}

// setHome makes region the home relay and reports it to control; false if the node is
// closing, has no relay yet or is already there.
func (n *Node) setHome(region int) bool {
	n.mu.Lock()
	if n.relay == nil || n.ctx.Err() != nil || region == n.home {
		n.mu.Unlock()
		return false
	}
	n.home = region
	n.relay.SetHome(region)
	n.mu.Unlock()
	n.reportHome()
	return true
}

func (n *Node) relayURL() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nm == nil || n.nm.DERPMap == nil {
		return "the home relay"
	}
	if r := n.nm.DERPMap.Regions[n.home]; r != nil && len(r.Nodes) > 0 {
		return derpws.NodeURL(r.Nodes[0])
	}
	return "the home relay"
}

// HomeRegion returns the node's home DERP region (0 before the first map).
func (n *Node) HomeRegion() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.home
}

// NetMap returns the latest network map, or nil before the first.
func (n *Node) NetMap() *controlws.NetworkMap {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.nm
}

// MapVersion is the control protocol version of the connection that brought the latest
// network map; 0 before the first.
func (n *Node) MapVersion() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mapCC == nil {
		return 0
	}
	return n.mapCC.Version()
}

// State returns the node's current state.
func (n *Node) State() State {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.state
}

func (n *Node) setState(s State) {
	n.mu.Lock()
	changed := n.state != s
	n.state = s
	n.mu.Unlock()
	if changed && n.opts.OnState != nil {
		n.opts.OnState(s)
	}
}

// ResolveAddr turns a peer name or overlay address into an overlay address.
func (n *Node) ResolveAddr(host string) (netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip, nil
	}
	nm := n.NetMap()
	if nm == nil {
		return netip.Addr{}, errors.New("node: no network map yet")
	}
	p, ok := nm.PeerByName(host)
	if !ok {
		return netip.Addr{}, fmt.Errorf("%w: %q is not in this node's network map", ErrUnknownHost, host)
	}
	for _, a := range p.Addresses {
		if a.Addr().Is4() {
			return a.Addr(), nil
		}
	}
	if len(p.Addresses) > 0 {
		return p.Addresses[0].Addr(), nil
	}
	return netip.Addr{}, fmt.Errorf("host %q has no address", host)
}

// Dial connects to addr ("host:port", host a peer name or overlay address) over the overlay.
func (n *Node) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("bad port %q", portStr)
	}
	ip, err := n.ResolveAddr(host)
	if err != nil {
		return nil, err
	}
	eng, err := n.engine()
	if err != nil {
		return nil, err
	}
	c, err := eng.DialContext(ctx, network, netip.AddrPortFrom(ip, uint16(port)))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrHostUnreachable, addr, err)
	}
	return c, nil
}

// Listen listens for TCP on port of the node's overlay addresses.
func (n *Node) Listen(port uint16) (net.Listener, error) {
	eng, err := n.engine()
	if err != nil {
		return nil, err
	}
	return eng.ListenTCP(port)
}

func (n *Node) engine() (*engine.Engine, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.eng == nil {
		return nil, errors.New("node: not started")
	}
	return n.eng, nil
}

// HomeUp reports whether the connection to the home relay is up.
func (n *Node) HomeUp() bool {
	n.mu.Lock()
	relay := n.relay
	n.mu.Unlock()
	return relay != nil && relay.HomeUp()
}

// RelayStats returns the counters of the connection to the home relay.
func (n *Node) RelayStats() (derpws.ClientCounters, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.relay == nil {
		return derpws.ClientCounters{}, false
	}
	return n.relay.Stats(), true
}

// Logout tells control to forget this node (an ephemeral node is deleted at once) and closes it.
func (n *Node) Logout(ctx context.Context) error {
	n.mu.Lock()
	cc := n.cc
	n.mu.Unlock()
	var err error
	if cc != nil {
		err = cc.Logout(ctx)
	}
	n.id.Registered = false
	if serr := n.id.save(n.opts.StateDir); err == nil {
		err = serr
	}
	n.Close()
	return err
}

// Close leaves the network: it stops following control and closes the data path.
func (n *Node) Close() error {
	n.cancel()
	n.mu.Lock()
	cc := n.cc
	n.mu.Unlock()
	if cc != nil {
		cc.Close()
	}
	n.closeData()
	n.setState(StateStopped)
	return nil
}

func (n *Node) closeData() {
	n.mu.Lock()
	eng, relay := n.eng, n.relay
	n.mu.Unlock()
	if eng != nil {
		eng.Close()
	}
	if relay != nil {
		relay.Close()
	}
}
