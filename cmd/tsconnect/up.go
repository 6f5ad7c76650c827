package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"tsconnect/agent"
	"tsconnect/controlws"
)

func init() {
	var cfg agent.Config
	var ops opsFlags
	var udpPort int
	var udpAddr string
	register(&command{
		name:  "up",
		usage: "[--ssh] [--vnc ADDR] [--max-map-age DUR] [--hostname NAME] [--udp-port N [--udp-addr IP]] --login-server URL [--auth-key KEY|file:PATH] [--state DIR] [--metrics-listen ADDR] [--log-format json]",
		short: "join the network as a node (the agent), optionally serving SSH",
		long: `Runs the node agent in the foreground: it registers with the control server
(with an auth key the first time, or without it interactively: it prints a URL at which
a user signs in to own the node, and waits; the node's keys are kept in --state), follows the
network map and relays WireGuard through DERP. With --ssh it serves SSH on port 22 of
its overlay addresses only — nothing listens on the host's own ports.

Direct paths: with --udp-port N (0: any free port) the agent also opens one UDP socket,
publishes its endpoints (the host's addresses with that port, and the address the
relays' STUN sees) and carries WireGuard straight to peers that answer there, starting
on the relay and falling back to it within 2 s when the direct path stops answering.
--udp-addr IP binds the socket to that one address, which is then its only local endpoint.
Without --udp-port everything goes through the relay.

The auth key: --auth-key file:PATH reads it from a file (keep it mode 0600), else
$TSCONNECT_AUTH_KEY holds it; --auth-key KEY works too, but shows the key in ps.

Local commands (status, nc) reach it through its unix socket: the global --socket
flag, else $TSCONNECT_SOCKET, else the default path. Only root and the agent's own
user may use that socket.`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&cfg.ControlURL, "login-server", "", "control server URL, e.g. http://127.0.0.1:8080 (required)")
			fs.StringVar(&cfg.AuthKey, "auth-key", "", "pre-auth key used to register the first time, or file:PATH to read it from PATH (default $"+authKeyEnv+")")
			fs.StringVar(&cfg.Hostname, "hostname", "", "node name to ask for (default: the machine's hostname)")
			fs.StringVar(&cfg.StateDir, "state", filepath.Join(defaultStateRoot(), "agent"), "state directory (keys; keep it private)")
			fs.BoolVar(&cfg.SSH, "ssh", false, "serve SSH on the node's overlay addresses")
			fs.StringVar(&cfg.VNC, "vnc", "", "forward port 5900 of the node's overlay addresses to the VNC server at this address (e.g. 127.0.0.1:5900); the policy's acls decide who may connect")
			ops.register(fs)
			fs.IntVar(&udpPort, "udp-port", -1, "UDP port for direct paths to peers (0: any free port; -1, the default: relay only)")
			fs.StringVar(&udpAddr, "udp-addr", "", "address to bind the --udp-port socket to (default: all; then it is the only local endpoint published)")
			fs.DurationVar(&cfg.MaxMapAge, "max-map-age", 0, "refuse new SSH logins while the network map is older than this (control unreachable); 0 (the default) keeps deciding under the last map")
		},
		run: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments %q (flags come before arguments)", args)
			}
			if err := ops.apply(); err != nil {
				return err
			}
			if cfg.ControlURL == "" {
				return fmt.Errorf("--login-server is required")
			}
			if cfg.VNC != "" {
				if _, _, err := net.SplitHostPort(cfg.VNC); err != nil {
					return fmt.Errorf("--vnc %q: want host:port of the VNC server: %v", cfg.VNC, err)
				}
			}
			key, err := resolveAuthKey(cfg.AuthKey)
			if err != nil {
				return err
			}
			cfg.AuthKey = key
			switch {
			case udpPort > 65535:
				return fmt.Errorf("--udp-port %d is not a UDP port", udpPort)
			case udpPort >= 0:
				cfg.UDPListen = net.JoinHostPort(udpAddr, strconv.Itoa(udpPort))
			case udpAddr != "":
				return fmt.Errorf("--udp-addr needs --udp-port")
			}
			cfg.SocketPath = socketPath()
			cfg.Logf = logfTo("")
			if cfg.AuthKey == "" {
				cfg.OnLoginURL = func(url string) {
					fmt.Fprintf(os.Stderr, "\nTo add this node to the network, sign in at:\n\n\t%s\n\n", url)
				}
			}
			a, err := agent.New(cfg)
			if err != nil {
				return err
			}
			if err := a.Start(ctx); err != nil {
				a.Close()
				return versionRefusal(err, cfg.ControlURL)
			}
			if err := ops.serveMetrics(ctx, a.Collector()); err != nil {
				a.Close()
				return err
			}
			nm := a.Node().NetMap()
			direct := "off"
			if p := a.Paths(); p != nil {
				direct = "udp port " + strconv.Itoa(int(p.Port()))
			}
			log.Printf("up: node %s, addresses %v, ssh=%v, vnc=%q, direct paths %s, socket %s", nm.Self.Name, nm.Self.Addresses, cfg.SSH, cfg.VNC, direct, cfg.SocketPath)
			<-ctx.Done()
			return a.Close()
		},
	})
}

// versionRefusal returns err, or, when control and this binary share no protocol version, just
// the sentence saying which to upgrade to what: the person at the terminal acts on that, not on
// the wrappers around it ("control unreachable", which it is not).
func versionRefusal(err error, controlURL string) error {
	var ce *controlws.Error
	if errors.As(err, &ce) && ce.Code == controlws.CodeUnsupportedVer {
		return fmt.Errorf("%s (control at %s)", ce.Message, controlURL)
	}
	return err
}
