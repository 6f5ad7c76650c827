package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"tsconnect/control"
	"tsconnect/web"
)

func init() {
	var (
		listen, stateDir, serverURL, certFile, keyFile string
		grace                                          time.Duration
	)
	register(&command{
		name:  "control",
		usage: "--listen ADDR --state DIR [--server-url URL] [--tls-cert FILE --tls-key FILE]",
		short: "run the coordination server with its embedded relay and web console",
		long: `Serves the control protocol (WebSocket at /ts/control, key at /key), the embedded DERP
relay at /derp, and the web pages, on --listen. State (users, keys, nodes, the server's
key) lives in a SQLite file in --state; admin commands (users, keys, nodes) reach the
running server through the unix socket DIR/admin.sock, mode 0600.

GET / answers once the server is ready. --server-url is the public base URL that goes
into DERP maps and links (default: derived from --listen and TLS).`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve on")
			fs.StringVar(&stateDir, "state", filepath.Join(defaultStateRoot(), "control"), "state directory")
			fs.StringVar(&serverURL, "server-url", "", "public base URL, e.g. https://control.example.com")
			fs.StringVar(&certFile, "tls-cert", "", "TLS certificate file (PEM)")
			fs.StringVar(&keyFile, "tls-key", "", "TLS key file (PEM)")
			fs.DurationVar(&grace, "ephemeral-grace", 30*time.Second, "how long a disconnected ephemeral node lives on (at most 60s)")
		},
		run: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments %q (flags come before arguments)", args)
			}
			if (certFile == "") != (keyFile == "") {
				return fmt.Errorf("--tls-cert and --tls-key go together")
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
			})
			if err != nil {
				ln.Close()
				return err
			}
			defer srv.Close()
			hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
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
