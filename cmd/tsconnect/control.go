package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"tsconnect/console"
	"tsconnect/control"
	"tsconnect/derpws"
	"tsconnect/internal/metrics"
	"tsconnect/oidc"
	"tsconnect/tlscert"
	"tsconnect/web"
)

func init() {
	var (
		listen, stateDir, serverURL, storeURL         string
		tf                                            tlsFlags
		ops                                           opsFlags
		derpMapFile, relaySecretFile                  string
		noEmbeddedDERP                                bool
		grace, auditRetention                         time.Duration
		oidcIssuer, oidcClientID, oidcSecretFile      string
		oidcDomains, oidcUsers, oidcGroups, oidcClaim string
		trustedProxy                                  string
		stunf                                         stunFlag
	)
	register(&command{
		name: "control",
		usage: "--listen ADDR --state DIR [--store postgres://…] [--server-url URL] [--tls-cert FILE --tls-key FILE | --acme-domain HOST [--acme-email E] [--acme-directory URL]] [--derp-map FILE [--no-embedded-derp]] [--relay-secret FILE] " +
			"[--oidc-issuer URL --oidc-client-id ID --oidc-client-secret-file FILE [--oidc-allowed-domains a,b] [--oidc-allowed-users a,b] [--oidc-allowed-groups a,b] [--oidc-groups-claim NAME]] [--trusted-proxy CIDR,…] [--audit-retention DUR]",
		short: "run the coordination server with its embedded relay and web console",
		long: `Serves the control protocol (WebSocket at /ts/control, key at /key), the embedded DERP
relay at /derp, the web pages and the admin console at /admin/ (its JSON API under
/api/v1/), on --listen. Console logins are local accounts (make one with
` + "`tsconnect users create --admin --password-stdin EMAIL`" + `) and, with --oidc-issuer,
single sign-on. State (users, keys, nodes, the server's
key) lives in a SQLite file in --state, or with --store postgres://USER@HOST/DB in that
PostgreSQL database (its schema made or upgraded on start; --state then holds only the
admin socket and ACME files); admin commands (users, keys, nodes) reach the
running server through the unix socket DIR/admin.sock, mode 0600.

GET / answers once the server is ready; /healthz answers while it runs and /readyz while
its store answers too. --metrics-listen ADDR serves Prometheus metrics at ADDR/metrics, a
listener of its own; --log-format json writes the log as JSON lines. --server-url is the public base URL that goes
into DERP maps and links (default: derived from --listen and TLS).

HTTPS: --tls-cert and --tls-key (loaded again on SIGHUP and when the files change), or
--acme-domain HOST, which gets the certificate from an ACME CA (Let's Encrypt unless
--acme-directory says otherwise; the directory is reached through the system's trust
store) by TLS-ALPN-01 on --listen, so --listen must be HOST's port 443; it is kept in
DIR/acme and renewed with a third of its lifetime left.

--derp-map FILE hands nodes the regions of a DERP map in the common JSON format
({"Regions": {"1": {"RegionID": 1, "Nodes": [...]}}}), e.g. a fleet of stock relays or
of "tsconnect derp" relays, next to the embedded relay (which then takes the first free
region ID) or, with --no-embedded-derp, instead of it.

--stun-port N (0: any free port) makes the embedded relay answer STUN on UDP N of the
--listen host and puts the port in its DERP map entry, so agents with --udp-port learn
their public address. Off by default.

--relay-secret FILE turns on ` + "`POST /ts/derp-verify`" + `, where standalone relays
("tsconnect derp --verify-clients-url") ask whether a node key may connect; only relays
showing that secret get an answer.

--trusted-proxy CIDR,… names the reverse proxies in front of the server: only requests
from them may say who the client is (X-Forwarded-For, or Forwarded's for=), and the login
limits count that client (IPv6 per /64). Without it no forwarded header is believed.

--oidc-issuer URL turns on single sign-on with any OpenID Connect provider (discovery at
URL/.well-known/openid-configuration; PKCE, state and nonce checked; a verified email
required). Register the client at the provider with the redirect URI
SERVER_URL/auth/oidc/callback. Users appear on first sign-in, as members; an admin may
create a user beforehand (same email) to give them the admin role. Their groups (the ID
token's or userinfo's --oidc-groups-claim, default "groups"; a dotted path such as
realm_access.roles reads a nested claim) count in the policy where a group lists
"idpgroup:NAME". --oidc-allowed-domains, --oidc-allowed-users and --oidc-allowed-groups
(comma-separated) limit who may sign in. Check mode re-authenticates such users at the
provider; local accounts re-enter their password.

The audit log (sign-ins, checks, and every SSH login decision the agents report) is kept
for --audit-retention (default: forever); ` + "`tsconnect audit export`" + ` writes it as
JSON lines.`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve on")
			fs.StringVar(&stateDir, "state", filepath.Join(defaultStateRoot(), "control"), "state directory")
			fs.StringVar(&storeURL, "store", "", "PostgreSQL database (postgres://user@host/db) to keep the network in, instead of SQLite in --state")
			fs.StringVar(&serverURL, "server-url", "", "public base URL, e.g. https://control.example.com")
			tf.register(fs)
			ops.register(fs)
			fs.StringVar(&derpMapFile, "derp-map", "", "external DERP map (JSON) to hand to nodes")
			fs.BoolVar(&noEmbeddedDERP, "no-embedded-derp", false, "do not run the embedded relay (needs --derp-map)")
			stunf.register(fs)
			fs.StringVar(&relaySecretFile, "relay-secret", "", "file holding the secret standalone relays show at /ts/derp-verify")
			fs.DurationVar(&grace, "ephemeral-grace", 30*time.Second, "how long a disconnected ephemeral node lives on (at most 60s)")
			fs.DurationVar(&auditRetention, "audit-retention", 0, "how long the audit log keeps an event, e.g. 8760h (at least 1m; 0 keeps all)")
			fs.StringVar(&oidcIssuer, "oidc-issuer", "", "OpenID Connect provider's issuer URL: turns on single sign-on")
			fs.StringVar(&oidcClientID, "oidc-client-id", "", "client ID registered at the provider")
			fs.StringVar(&oidcSecretFile, "oidc-client-secret-file", "", "file holding the client secret")
			fs.StringVar(&oidcDomains, "oidc-allowed-domains", "", "comma-separated email domains that may sign in (default: any)")
			fs.StringVar(&oidcUsers, "oidc-allowed-users", "", "comma-separated emails that may always sign in")
			fs.StringVar(&oidcGroups, "oidc-allowed-groups", "", "comma-separated provider groups, one of which a user must hold (default: any)")
			fs.StringVar(&oidcClaim, "oidc-groups-claim", "groups", "ID token claim holding the user's groups (a dotted path such as realm_access.roles for a nested claim)")
			fs.StringVar(&trustedProxy, "trusted-proxy", "", "comma-separated CIDRs of reverse proxies whose X-Forwarded-For/Forwarded name the client (default: trust none)")
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
			var oc *oidc.Config
			if oidcIssuer != "" {
				if oidcClientID == "" || oidcSecretFile == "" {
					return fmt.Errorf("--oidc-issuer needs --oidc-client-id and --oidc-client-secret-file")
				}
				secret, err := readSecret(oidcSecretFile)
				if err != nil {
					return fmt.Errorf("--oidc-client-secret-file: %w", err)
				}
				oc = &oidc.Config{Issuer: oidcIssuer, ClientID: oidcClientID, ClientSecret: secret,
					AllowedDomains: commaList(oidcDomains), AllowedUsers: commaList(oidcUsers),
					AllowedGroups: commaList(oidcGroups), GroupsClaim: oidcClaim}
			} else if oidcClientID != "" || oidcSecretFile != "" || oidcDomains != "" || oidcUsers != "" || oidcGroups != "" {
				return fmt.Errorf("the --oidc-* flags need --oidc-issuer")
			}
			trusted, err := parseCIDRs(trustedProxy)
			if err != nil {
				return fmt.Errorf("--trusted-proxy: %w", err)
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			if serverURL == "" {
				serverURL = tf.defaultURL(ln.Addr())
			}
			meshAddr, err := relayAddr(ln.Addr(), storeURL)
			if err != nil {
				ln.Close()
				return err
			}
			var certs tlscert.Source
			if tf.enabled() {
				if certs, err = tf.source(ctx, filepath.Join(stateDir, "acme"), "control: "); err != nil {
					ln.Close()
					return err
				}
			}
			stunPC, err := stunf.listen(listen)
			if err != nil {
				ln.Close()
				return err
			}
			st, err := openStore(ctx, storeURL)
			if err != nil {
				ln.Close()
				if stunPC != nil {
					stunPC.Close()
				}
				return err
			}
			srv, handler, err := startControl(ctx, control.Config{
				StateDir: stateDir, ServerURL: serverURL, EphemeralGrace: grace, AuditRetention: auditRetention,
				EmbeddedDERP: !noEmbeddedDERP, DERPMap: derpMap, Store: st, STUN: stunPC, RelayAddr: meshAddr,
			}, oc, trusted)
			if err != nil {
				if stunPC != nil {
					stunPC.Close()
				}
				if st != nil {
					st.Close()
				}
				ln.Close()
				return err
			}
			defer srv.Close()
			mux := http.NewServeMux()
			if relaySecret != "" {
				mux.Handle(control.RelayVerifyPath, srv.RelayVerifyHandler(relaySecret))
			}
			metrics.Health(mux, srv.Ready)
			mux.Handle("/", handler)
			if err := ops.serveMetrics(ctx, srv.Collector()); err != nil {
				ln.Close()
				return err
			}
			hs := control.NewHTTPServer(mux) // header timeout and size limits
			go func() {
				if err := serve(hs, ln, certs); err != http.ErrServerClosed {
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
// API on DIR/admin.sock. The handler to serve is the admin console (/admin/, /api/v1/) in
// front of the server's own handler (control protocol, relay, web pages), every answer with
// the console's security headers. A non-nil oc turns on single sign-on (its RedirectURL is
// set here). trusted are the reverse proxies whose forwarded headers the console believes
// (console.Options.TrustedProxies).
func startControl(ctx context.Context, cfg control.Config, oc *oidc.Config, trusted []netip.Prefix) (*control.Server, http.Handler, error) {
	cfg.Web = web.Handler()
	cfg.Logf = logfTo("") // every package prefixes its own lines ("control: ", "console: ", …)
	var rp *oidc.RP
	if oc != nil {
		oc.RedirectURL = strings.TrimSuffix(cfg.ServerURL, "/") + console.OIDCCallbackPath
		oc.Logf = cfg.Logf
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		var err error
		rp, err = oidc.New(dctx, *oc)
		cancel()
		if err != nil {
			return nil, nil, err
		}
		cfg.Logf("control: single sign-on with %s (redirect URI %s)", rp.Issuer(), oc.RedirectURL)
	}
	srv, err := control.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	con, err := console.New(srv, console.Options{ServerURL: cfg.ServerURL, Next: srv.Handler(), Logf: cfg.Logf, OIDC: rp,
		TrustedProxies: trusted})
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	adminLn, err := control.ListenAdmin(cfg.StateDir)
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	go con.ServeAdmin(adminLn)
	return srv, withSecurityHeaders(con), nil
}

// parseCIDRs parses a comma-separated list of CIDR prefixes (a bare address is its /32 or /128).
func parseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range commaList(s) {
		p, err := netip.ParsePrefix(item)
		if err != nil {
			a, aerr := netip.ParseAddr(item)
			if aerr != nil {
				return nil, fmt.Errorf("%q is not a CIDR prefix like 10.0.0.0/8 or an address", item)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// commaList splits a comma-separated flag value, dropping empty items.
func commaList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
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
