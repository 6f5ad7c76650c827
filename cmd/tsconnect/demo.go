package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"tsconnect/agent"
	"tsconnect/control"
)

func init() {
	var (
		listen, stateDir string
		grace            time.Duration
	)
	register(&command{
		name:  "demo",
		usage: "[--listen 127.0.0.1:PORT] [--state DIR]",
		short: "run control, relay, an SSH node and the demo page on this machine",
		long: `Starts, in one process and on loopback only: the coordination server (SQLite state in
--state), its embedded DERP relay, a node agent with SSH enabled, and the demo page.
It prints one line "URL: http://127.0.0.1:PORT/#token=…": open it and the page joins the
network as an ephemeral node and opens a login shell on this machine, as the user who
runs the demo, through control, the relay, WireGuard and the agent's SSH server.

The token in the URL fragment is the only thing that lets a page mint its ephemeral key,
so others on this machine who find the port get no shell. It is single-use: it opens one
session (a reload of that page says the token was used), and once it is used the demo
prints a new "URL: …" line with a fresh token for the next session. Admin commands work against
the running demo with --state, e.g. ` + "`tsconnect nodes --state DIR`" + `.

It also prints a line "Console: http://127.0.0.1:PORT/admin/  login: EMAIL  password: …",
an admin login to the web console (the password is new on every start).`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&listen, "listen", "127.0.0.1:0", "loopback address to serve on (port 0 picks a free one)")
			fs.StringVar(&stateDir, "state", filepath.Join(defaultStateRoot(), "demo"), "state directory")
			fs.DurationVar(&grace, "ephemeral-grace", 30*time.Second, "how long a disconnected ephemeral node lives on")
		},
		run: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments %q", args)
			}
			return runDemo(ctx, listen, stateDir, grace)
		},
	})
}

func runDemo(ctx context.Context, listen, stateDir string, grace time.Duration) error {
	ap, err := netip.ParseAddrPort(listen)
	if err != nil || !ap.Addr().IsLoopback() {
		return fmt.Errorf("--listen %q: the demo serves on a loopback address only (e.g. 127.0.0.1:8080)", listen)
	}
	me, err := user.Current()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()

	srv, handler, err := startControl(ctx, control.Config{StateDir: stateDir, ServerURL: base, EphemeralGrace: grace}, nil, nil)
	if err != nil {
		ln.Close()
		return err
	}
	defer srv.Close()

	email := me.Username + "@demo.tsconnect"
	owner, err := srv.UserByEmail(ctx, email)
	if errors.Is(err, control.ErrNotFound) {
		owner, err = srv.CreateUser(ctx, email, control.RoleAdmin)
	}
	if err != nil {
		return err
	}
	// A fresh console password on every start: the demo prints a login that works.
	consolePassword := randomHex(12)
	if err := srv.SetPassword(ctx, owner.ID, consolePassword); err != nil {
		return err
	}
	policyNote, err := installDemoPolicy(ctx, srv, email, me.Username)
	if err != nil {
		return err
	}
	tokens := newDemoTokens()
	mux := http.NewServeMux()
	mux.Handle("/", handler)
	var agentNode string
	mux.HandleFunc("POST /api/demo/session", func(w http.ResponseWriter, r *http.Request) {
		got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		verdict, next := tokens.take(got)
		switch verdict {
		case tokenUsed:
			writeJSON(w, http.StatusGone, map[string]string{"code": "token_used",
				"error": "this URL's token was already used: each URL that `tsconnect demo` prints opens one session. Open the newest URL it printed, or restart it"})
			return
		case tokenWrong:
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "this page needs the demo's token: open the exact URL that `tsconnect demo` printed"})
			return
		}
		fmt.Printf("tsconnect demo: that URL's token is now used; for another session open:\nURL: %s/#token=%s\n", base, next)
		secret, _, err := srv.CreateAuthKey(r.Context(), control.AuthKeyOptions{
			User: owner.ID, Ephemeral: true, Expiry: 5 * time.Minute,
		})
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{
			"authKey": secret, "controlURL": base, "host": agentNode, "user": me.Username,
		})
	})
	httpSrv := control.NewHTTPServer(withSecurityHeaders(mux)) // header timeout and size limits
	go httpSrv.Serve(ln)
	defer httpSrv.Close()

	agentKey, _, err := srv.CreateAuthKey(ctx, control.AuthKeyOptions{User: owner.ID, Expiry: 10 * time.Minute})
	if err != nil {
		return err
	}
	hostname, _ := os.Hostname()
	a, err := agent.New(agent.Config{
		ControlURL: base, AuthKey: agentKey, Hostname: hostname,
		StateDir: filepath.Join(stateDir, "agent"), SocketPath: filepath.Join(stateDir, "agent.sock"),
		SSH: true, Logf: logfTo("agent: "),
	})
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		a.Close()
		return fmt.Errorf("starting the local node: %w", err)
	}
	defer a.Close()
	agentNode = a.Node().NetMap().Self.Name

	fmt.Printf("tsconnect demo: control, relay and SSH node %q (login as %q) running; state in %s\n", agentNode, me.Username, stateDir)
	fmt.Printf("tsconnect demo: %s\n", policyNote)
	fmt.Printf("Open this URL in a browser (it holds the page's one-time token; keep it to yourself):\n")
	fmt.Printf("URL: %s/#token=%s\n", base, tokens.current())
	fmt.Printf("Console: %s/admin/  login: %s  password: %s\n", base, email, consolePassword)
	<-ctx.Done()
	fmt.Println("tsconnect demo: stopping")
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// installDemoPolicy puts a policy in force under which the demo's user reaches their own
// nodes (the local one) by SSH as localUser, unless someone already set a policy.
// It returns a sentence for the output.
func installDemoPolicy(ctx context.Context, srv *control.Server, email, localUser string) (string, error) {
	cur, err := srv.Policy(ctx)
	if err != nil {
		return "", err
	}
	if cur.Version != 0 {
		return fmt.Sprintf("policy version %d is in force (kept; see `tsconnect policy get --state DIR`)", cur.Version), nil
	}
	e, _ := json.Marshal(email)
	u, _ := json.Marshal(localUser)
	text := fmt.Sprintf(`// Installed by tsconnect demo.
{
	"acls": [
		{"action": "accept", "src": ["*"], "dst": ["*:*"]},
	],
	"ssh": [
		// The demo's user may SSH to their own nodes as %[2]s.
		{"action": "accept", "src": [%[1]s], "dst": ["autogroup:self"], "users": [%[2]s]},
	],
}
`, e, u)
	if _, err := srv.SetPolicy(ctx, []byte(text), "tsconnect demo"); err != nil {
		return "", fmt.Errorf("installing the demo policy: %w", err)
	}
	return fmt.Sprintf("installed a policy: %s may SSH to their own nodes (this one) as %q", email, localUser), nil
}
