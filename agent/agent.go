// Package agent is the node agent behind `tsconnect up`: a Node that serves SSH on its
// overlay addresses and answers local commands on a unix socket.
package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/ssh"

	"tsconnect/controlws"
	"tsconnect/magicbind"
	"tsconnect/node"
	"tsconnect/sshd"
)

// Config configures an Agent.
type Config struct {
	ControlURL string
	AuthKey    string
	Hostname   string
	// StateDir keeps the node's keys, the SSH host keys and the SSH audit records not yet
	// sent to control.
	StateDir string
	// SocketPath is the local API's unix socket; "" means none.
	SocketPath string
	// SSH serves SSH on port 22 of the node's overlay addresses.
	SSH bool
	// Logf, if non-nil, receives log lines.
	Logf func(format string, args ...any)
	// SFTPServer is the argv of the SFTP child process; nil means this executable's
	// `sftp-server` subcommand (see sshlogin.go).
	SFTPServer []string
	// CheckRetry is how long a login held by a check rule waits for control to come back
	// when the connection to it fails before refusing; 0 means DefaultCheckRetry.
	CheckRetry time.Duration
	// MaxMapAge, if positive, refuses new SSH logins while the network map is older than
	// this (control unreachable); 0 keeps deciding under the last map (see mapage.go).
	MaxMapAge time.Duration
	// OnLoginURL, if non-nil, is called with the URL to sign in at when the node registers
	// without an auth key (interactive login); Start then waits until someone has.
	OnLoginURL func(url string)
	// UDPListen, if set, is the UDP address ("host:port", port 0 for any) of the socket that
	// carries WireGuard directly between this node and peers that answer there (magicbind),
	// the relay staying the start and the fallback. "" sends everything through the relay.
	UDPListen string
	// UDPConn, if set instead of UDPListen, is that socket already open (a test opens it in
	// a network namespace it made); the agent owns it and closes it.
	UDPConn *net.UDPConn
	// Interfaces lists the local addresses published with the UDP port when UDPListen's
	// host is unspecified; nil means magicbind.SystemInterfaces.
	Interfaces magicbind.Interfaces
	// VNC, if set, is the address ("host:port") of a VNC server that port 5900 of the node's
	// overlay addresses forwards to (vnc.go); the map then says the node offers VNC.
	VNC string
}

// Agent is a running node agent.
type Agent struct {
	cfg  Config
	logf func(format string, args ...any)
	node *node.Node
	self *user.User
	// paths is the direct-path layer; nil without Config.UDPListen.
	paths *magicbind.Conn

	// revocations counts SSH logins cut because a new map no longer allows them (metrics.go).
	revocations prometheus.Counter
	// recFailures counts recordings that failed, by stage (record.go).
	recFailures *prometheus.CounterVec
	// audit holds the SSH login decisions not yet stored by control (audit.go).
	audit auditQueue

	mu       sync.Mutex
	sshSrv   *sshd.Server
	sshLn    net.Listener
	hostKeys []ssh.Signer
	api      *localAPI
	mapCh    chan struct{} // closed on the next network map (check.go)
	// expiryTimer re-evaluates the sessions when the soonest peer key expires (keyexpiry.go).
	expiryTimer *time.Timer

	sshToggle sync.Mutex // serializes SetSSH
	loginMu   sync.Mutex // serializes Login

	// mapSource, if non-nil, replaces the node's map (tests of the SSH decisions); mapAsOf
	// and now replace the node's map freshness and the clock (mapage.go).
	mapSource func() *controlws.NetworkMap
	mapAsOf   func() (time.Time, bool)
	now       func() time.Time
	stopWatch context.CancelFunc
	// checks, if non-nil, replaces the node as the client of control's check calls (tests).
	checks checkClient
}

// netMap returns the network map SSH logins are decided under.
func (a *Agent) netMap() *controlws.NetworkMap {
	if a.mapSource != nil {
		return a.mapSource()
	}
	return a.node.NetMap()
}

// New prepares an agent: it loads or makes its keys but does not join yet.
func New(cfg Config) (*Agent, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("agent: a state dir is required")
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	self, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("agent: who am I: %v", err)
	}
	a := &Agent{cfg: cfg, logf: logf, self: self, revocations: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tsconnect_agent_ssh_revocations_total", Help: "SSH logins cut because a new network map no longer allows them."}),
		recFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tsconnect_agent_ssh_recording_failures_total",
			Help: "Session recordings that failed: no recorder accepted one (start), one broke during its session (midway) or at its end (end)."},
			[]string{"stage"})}
	var hostKeys []string
	if cfg.SSH {
		a.hostKeys, err = sshd.LoadOrCreateHostKeys(cfg.StateDir)
		if err != nil {
			return nil, err
		}
		hostKeys = sshd.AuthorizedKeys(a.hostKeys)
	}
	hostname := cfg.Hostname
	if hostname == "" {
		hostname, _ = os.Hostname()
	}
	if a.paths, err = openPaths(cfg, logf); err != nil {
		return nil, err
	}
	var paths node.Paths
	if a.paths != nil {
		paths = a.paths
	}
	a.node, err = node.New(node.Options{
		Paths:       paths,
		ControlURL:  cfg.ControlURL,
		AuthKey:     cfg.AuthKey,
		OnLoginURL:  cfg.OnLoginURL,
		Hostname:    hostname,
		StateDir:    cfg.StateDir,
		SSH:         cfg.SSH,
		SSHHostKeys: hostKeys,
		SSHTools:    sshTools(cfg.SSH),
		VNC:         cfg.VNC != "",
		Logf:        logf,
		OnNetMap:    a.onNetMap,
	})
	if err != nil {
		if a.paths != nil {
			a.paths.Close()
		}
		return nil, err
	}
	if err := a.audit.open(cfg.StateDir, logf); err != nil {
		a.node.Close()
		return nil, err
	}
	return a, nil
}

// Node returns the agent's node.
func (a *Agent) Node() *node.Node { return a.node }

// Start joins the network, then serves SSH (if configured) and the local API.
func (a *Agent) Start(ctx context.Context) error {
	if a.cfg.SocketPath != "" {
		api, err := listenLocalAPI(a.cfg.SocketPath, a, a.logf)
		if err != nil {
			return err
		}
		a.mu.Lock()
		a.api = api
		a.mu.Unlock()
	}
	if err := a.node.Start(ctx); err != nil {
		return err
	}
	if a.cfg.SSH {
		if err := a.startSSH(); err != nil {
			return err
		}
	}
	if a.cfg.VNC != "" {
		if err := a.startVNC(); err != nil {
			return err
		}
	}
	wctx, cancel := context.WithCancel(context.Background())
	a.mu.Lock()
	a.stopWatch = cancel
	a.mu.Unlock()
	go a.watchMapAge(wctx)
	go a.watchKeyExpiry(wctx)
	go a.sendAudit(wctx)
	go a.reportLogins(wctx)
	return nil
}

func (a *Agent) startSSH() error {
	ln, err := a.node.Listen(22)
	if err != nil {
		return fmt.Errorf("agent: listening on overlay port 22: %v", err)
	}
	srv := &sshd.Server{HostKeys: a.hostKeys, Authorize: a.authorize, Record: a.record, Audit: a.auditSSH, Logf: a.logf, SFTPServer: a.sftpServerArgv()}
	a.mu.Lock()
	a.sshSrv, a.sshLn = srv, ln
	a.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
			a.logf("agent: ssh server: %v", err)
		}
	}()
	return nil
}

// Close stops serving and leaves the network (the node stays registered).
func (a *Agent) Close() error {
	a.mu.Lock()
	srv, api := a.sshSrv, a.api
	if a.stopWatch != nil {
		a.stopWatch()
	}
	if a.expiryTimer != nil {
		a.expiryTimer.Stop()
	}
	a.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
	if api != nil {
		api.Close()
	}
	a.audit.close()
	err := a.node.Close()
	if a.paths != nil {
		a.paths.Close()
	}
	return err
}
