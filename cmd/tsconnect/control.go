package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"tsconnect/control"
	"tsconnect/derpws"
	"tsconnect/web"
)

func init() {
	var (
		listen, stateDir, serverURL, certFile, keyFile string
		derpMapFile, relaySecretFile                   string
		noEmbeddedDERP                                 bool
		grace                                          time.Duration
	)
	register(&command{
		name:  "control",
		usage: "--listen ADDR --state DIR [--server-url URL] [--tls-cert FILE --tls-key FILE] [--derp-map FILE [--no-embedded-derp]] [--relay-secret FILE]",
		short: "run the coordination server with its embedded relay and web console",
		long: `Serves the control protocol (WebSocket at /ts/control, key at /key), the embedded DERP
relay at /derp, and the web pages, on --listen. State (users, keys, nodes, the server's
key) lives in a SQLite file in --state; admin commands (users, keys, nodes) reach the
running server through the unix socket DIR/admin.sock, mode 0600.

GET / answers once the server is ready. --server-url is the public base URL that goes
into DERP maps and links (default: derived from --listen and TLS).

--derp-map FILE hands nodes the regions of a DERP map in the common JSON format
({"Regions": {"1": {"RegionID": 1, "Nodes": [...]}}}), e.g. a fleet of stock relays or
of "tsconnect derp" relays, next to the embedded relay (which then takes the first free
region ID) or, with --no-embedded-derp, instead of it.

--relay-secret FILE turns on ` + "`POST /ts/derp-verify`" + `, where standalone relays
("tsconnect derp --verify-clients-url") ask whether a node key may connect; only relays
showing that secret get an answer.`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve on")
			fs.StringVar(&stateDir, "state", filepath.Join(defaultStateRoot(), "control"), "state directory")
			fs.StringVar(&serverURL, "server-url", "", "public base URL, e.g. https://control.example.com")
			fs.StringVar(&certFile, "tls-cert", "", "TLS certificate file (PEM)")
			fs.StringVar(&keyFile, "tls-key", "", "TLS key file (PEM)")
			fs.StringVar(&derpMapFile, "derp-map", "", "external DERP map (JSON) to hand to nodes")
			fs.BoolVar(&noEmbeddedDERP, "no-embedded-derp", false, "do not run the embedded relay (needs --derp-map)")
			fs.StringVar(&relaySecretFile, "relay-secret", "", "file holding the secret standalone relays show at /ts/derp-verify")
			fs.DurationVar(&grace, "ephemeral-grace", 30*time.Second, "how long a disconnected ephemeral node lives on (at most 60s)")
		},
		run: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments %q (flags come before arguments)", args)
			}
			if (certFile == "") != (keyFile == "") {
				return fmt.Errorf("--tls-cert and --tls-key go together")
			}
			var derpMap *derpws.Map
			if derpMapFile != "" {
				m, err := readDERPMap(derpMapFile)
				if err != nil {
					return err
				}
				derpMap = m
			} else if noEmbeddedDERP {
				return fmt.Errorf("--no-embedded-derp needs --derp-map: nodes need at least one relay")
			}
			var relaySecret string
			if relaySecretFile != "" {
				s, err := readSecret(relaySecretFile)
				if err != nil {
					return err
				}
				relaySecret = s
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			if serverURL == "" {
				scheme := "http"
				if certFile != "" {
					scheme = "https"
				}
				serverURL = scheme + "://" + ln.Addr().String()
			}
			srv, err := startControl(control.Config{
				StateDir: stateDir, ServerURL: serverURL, EphemeralGrace: grace,
				EmbeddedDERP: !noEmbeddedDERP, DERPMap: derpMap,
			})
			if err != nil {
				ln.Close()
				return err
			}
			defer srv.Close()
			handler := srv.Handler()
			if relaySecret != "" {
				mux := http.NewServeMux()
				mux.Handle(control.RelayVerifyPath, srv.RelayVerifyHandler(relaySecret))
				mux.Handle("/", handler)
				handler = mux
			}
			hs := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
			go func() {
				var err error
				if certFile != "" {
					err = hs.ServeTLS(ln, certFile, keyFile)
				} else {
					err = hs.Serve(ln)
				}
				if err != http.ErrServerClosed {
					log.Printf("control: %v", err)
				}
			}()
			log.Printf("control: serving %s on %s, state in %s", serverURL, ln.Addr(), stateDir)
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			return hs.Shutdown(sctx)
		},
	})
}

// startControl starts a control server that serves the embedded web pages, with its admin
// API on DIR/admin.sock.
func startControl(cfg control.Config) (*control.Server, error) {
	cfg.Web = web.Handler()
	cfg.Logf = logfTo("control: ")
	srv, err := control.New(cfg)
	if err != nil {
		return nil, err
	}
	adminLn, err := control.ListenAdmin(cfg.StateDir)
	if err != nil {
		srv.Close()
		return nil, err
	}
	go srv.ServeAdmin(adminLn)
	return srv, nil
}

// readDERPMap loads a DERP map in the common JSON format and checks that it names relays.
func readDERPMap(path string) (*derpws.Map, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m derpws.Map
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("DERP map %s: %v", path, err)
	}
	if len(m.Regions) == 0 {
		return nil, fmt.Errorf("DERP map %s has no regions", path)
	}
	for id, r := range m.Regions {
		if r == nil || len(r.Nodes) == 0 {
			return nil, fmt.Errorf("DERP map %s: region %d has no nodes", path, id)
		}
		if r.RegionID != id {
			return nil, fmt.Errorf("DERP map %s: region under key %d says RegionID %d", path, id, r.RegionID)
		}
	}
	return &m, nil
}
