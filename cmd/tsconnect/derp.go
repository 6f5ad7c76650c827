package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"tsconnect/derpws"
	"tsconnect/internal/metrics"
	"tsconnect/key"
	"tsconnect/tlscert"
)

func init() {
	var (
		listen, meshKeyFile, meshWith        string
		tf                                   tlsFlags
		ops                                  opsFlags
		verifyURL, verifySecretFile, keyPath string
		dev                                  bool
		stunf                                stunFlag
	)
	register(&command{
		name:  "derp",
		usage: "--listen ADDR (--dev | --tls-cert FILE --tls-key FILE | --acme-domain HOST [--acme-email E] [--acme-directory URL]) [--mesh-key FILE --mesh-with HOST,...] [--verify-clients-url URL --verify-clients-secret FILE]",
		short: "run a standalone DERP relay, optionally meshed with the other relays of its region",
		long: `Serves a DERP relay at /derp (HTTP upgrade and WebSocket), /derp/probe and
/derp/latency-check for latency measurement, and /healthz and /readyz; with
--metrics-listen ADDR, Prometheus metrics at ADDR/metrics (a listener of their own). It speaks the common DERP protocol: stock clients can use it and our
nodes can use stock relays.

TLS needs --tls-cert and --tls-key (loaded again on SIGHUP and when the files change),
or --acme-domain, which gets and renews the certificate from an ACME CA (Let's Encrypt
unless --acme-directory says otherwise) by TLS-ALPN-01 on --listen (the name's port 443),
kept beside --key-file in acme/; --dev serves plain HTTP and is allowed on loopback
addresses only.

Mesh: relays of one region share a mesh key (--mesh-key FILE holding 64 hex digits; make
one with "head -c32 /dev/urandom | xxd -p -c64") and list each other with --mesh-with
(host:port or URLs; the port defaults to this relay's). Each relay watches the others'
clients and forwards packets to them, so two nodes on different relays of the region
reach each other.

Admission: with --verify-clients-url (a control server's ` + "`/ts/derp-verify`" + `) only keys
control knows may connect; the relay shows the shared secret of --verify-clients-secret
(the file given to "tsconnect control --relay-secret"). Without it, any key may connect.

STUN: --stun-port N (0: any free port) answers STUN binding requests on UDP N of the
--listen host, so native agents with --udp-port learn their public address; put the port
in the DERP map's STUNPort for this relay. Off by default.

The relay's key lives in --key-file (created if missing, mode 0600); without one it is
new on every start, which clients accept.`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&listen, "listen", "127.0.0.1:3340", "address to serve on")
			fs.BoolVar(&dev, "dev", false, "plain HTTP, for loopback development only")
			stunf.register(fs)
			tf.register(fs)
			ops.register(fs)
			fs.StringVar(&meshKeyFile, "mesh-key", "", "file holding the region's mesh key (64 hex digits)")
			fs.StringVar(&meshWith, "mesh-with", "", "comma-separated peer relays of this region (host[:port] or URL)")
			fs.StringVar(&verifyURL, "verify-clients-url", "", "control's relay verification URL, e.g. https://control.example.com/ts/derp-verify")
			fs.StringVar(&verifySecretFile, "verify-clients-secret", "", "file holding the secret this relay shows to --verify-clients-url")
			fs.StringVar(&keyPath, "key-file", "", "file keeping the relay's private key (created if missing)")
		},
		run: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments %q (flags come before arguments)", args)
			}
			if err := ops.apply(); err != nil {
				return err
			}
			if err := tf.check(); err != nil {
				return err
			}
			if dev == tf.enabled() {
				return errors.New("choose one of --dev (plain HTTP on loopback), --tls-cert/--tls-key or --acme-domain")
			}
			if dev && !isLoopback(listen) {
				return fmt.Errorf("--dev serves plain HTTP and is for loopback only; %q is not a loopback address", listen)
			}
			opts := &derpws.ServerOptions{Logf: logfTo("derp: ")}
			if meshKeyFile != "" {
				mk, err := readMeshKey(meshKeyFile)
				if err != nil {
					return err
				}
				opts.MeshKey = mk
			} else if meshWith != "" {
				return errors.New("--mesh-with needs --mesh-key")
			}
			if verifyURL != "" {
				if verifySecretFile == "" {
					return errors.New("--verify-clients-url needs --verify-clients-secret: control answers only relays that show the shared secret")
				}
				secret, err := readSecret(verifySecretFile)
				if err != nil {
					return err
				}
				opts.VerifyClient = derpws.VerifyURL(verifyURL, secret, nil)
			}
			priv, err := loadRelayKey(keyPath)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			stunPC, err := stunf.listen(listen)
			if err != nil {
				ln.Close()
				return err
			}
			if stunPC != nil {
				defer stunPC.Close()
				go derpws.ServeSTUN(stunPC, logfTo("derp: "))
			}
			srv := derpws.NewServer(priv, opts)
			if meshWith != "" {
				urls, err := meshURLs(meshWith, ln.Addr().String(), dev)
				if err != nil {
					ln.Close()
					return err
				}
				if err := srv.MeshWith(urls...); err != nil {
					ln.Close()
					return err
				}
			}
			mux := http.NewServeMux()
			mux.Handle("/derp", srv)
			mux.Handle("/derp/", srv)
			metrics.Health(mux, func(context.Context) error { return nil })
			mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/" {
					http.NotFound(w, r)
					return
				}
				fmt.Fprintf(w, "tsconnect DERP relay %s\n", srv.PublicKey())
			})
			var certs tlscert.Source
			if tf.enabled() {
				acmeCache := filepath.Join(defaultStateRoot(), "derp", "acme")
				if keyPath != "" {
					acmeCache = filepath.Join(filepath.Dir(keyPath), "acme")
				}
				if certs, err = tf.source(ctx, acmeCache, "derp: "); err != nil {
					ln.Close()
					srv.Close()
					return err
				}
			}
			if err := ops.serveMetrics(ctx, srv.Collector()); err != nil {
				ln.Close()
				srv.Close()
				return err
			}
			hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
			errc := make(chan error, 1)
			go func() { errc <- serve(hs, ln, certs) }()
			log.Printf("derp: relay %s serving on %s", srv.PublicKey().ShortString(), ln.Addr())
			select {
			case <-ctx.Done():
			case err := <-errc:
				srv.Close()
				return err
			}
			srv.Close() // tells clients to reconnect shortly (Restarting)
			sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			return hs.Shutdown(sctx)
		},
	})
}

// isLoopback reports whether a listen address names a loopback host.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// readSecret reads a secret file, trimmed; an empty one is an error.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("secret file %s is empty", path)
	}
	return s, nil
}

// readMeshKey reads a mesh key file: 64 hex digits.
func readMeshKey(path string) (string, error) {
	s, err := readSecret(path)
	if err != nil {
		return "", err
	}
	if b, err := hex.DecodeString(s); err != nil || len(b) != 32 {
		return "", fmt.Errorf("mesh key file %s must hold 64 hex digits", path)
	}
	return s, nil
}

// loadRelayKey reads the relay's private key from path, creating it if missing; "" means a
// new key every start.
func loadRelayKey(path string) (key.Private, error) {
	if path == "" {
		return key.NewPrivate(), nil
	}
	return key.LoadOrCreateFile(path)
}

// meshURLs turns --mesh-with entries into /derp URLs; a bare host takes the port of self.
func meshURLs(list, self string, dev bool) ([]string, error) {
	_, selfPort, _ := net.SplitHostPort(self)
	scheme := "https"
	if dev {
		scheme = "http"
	}
	var urls []string
	for _, h := range strings.Split(list, ",") {
		h = strings.TrimSpace(h)
		switch {
		case h == "":
			continue
		case strings.Contains(h, "://"):
			if !strings.HasSuffix(h, "/derp") {
				h = strings.TrimSuffix(h, "/") + "/derp"
			}
			urls = append(urls, h)
			continue
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(strings.Trim(h, "[]"), selfPort)
		}
		urls = append(urls, scheme+"://"+h+"/derp")
	}
	if len(urls) == 0 {
		return nil, errors.New("--mesh-with names no relay")
	}
	return urls, nil
}
