package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"tsconnect/controlws"
)

// Status is what `tsconnect status` shows.
type Status struct {
	State string                  `json:"state"`
	SSH   bool                    `json:"ssh"` // this agent serves SSH on overlay port 22 now
	Self  *controlws.Node         `json:"self,omitempty"`
	Peers []controlws.Node        `json:"peers"`
	Users []controlws.UserProfile `json:"users,omitempty"`
	// KeyWarning warns that this node's key expires soon or has expired (Agent.KeyWarning).
	KeyWarning string `json:"keyWarning,omitempty"`
	// ControlURL is the control replica whose map stream is up ("" while none is), and
	// ControlURLs every one the node dials in turn when it is lost (node.Node.ControlURLs).
	ControlURL  string   `json:"controlURL,omitempty"`
	ControlURLs []string `json:"controlURLs,omitempty"`
	// Paths is how traffic goes to each peer, by node key (64 hex digits); absent on an
	// agent without direct paths, whose traffic all goes through the relay.
	Paths map[string]PeerPath `json:"paths,omitempty"`
}

// localAPI serves the agent's local commands on a unix socket that only root and the
// agent's own user may use.
type localAPI struct {
	ln  net.Listener
	srv *http.Server
}

func listenLocalAPI(path string, a *Agent, logf func(string, ...any)) (*localAPI, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("agent: local API socket: %v", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /localapi/v1/status", func(w http.ResponseWriter, r *http.Request) { a.writeStatus(w) })
	mux.HandleFunc("POST /localapi/v1/dial", a.serveDial)
	mux.HandleFunc("POST /localapi/v1/login", a.serveLogin)
	mux.HandleFunc("POST /localapi/v1/ping", a.servePing)
	mux.HandleFunc("POST /localapi/v1/prefs", func(w http.ResponseWriter, r *http.Request) {
		nc, _ := r.Context().Value(connKey{}).(net.Conn)
		pid := 0
		if nc != nil {
			pid = peerPID(nc)
		}
		a.servePrefs(w, r, pid)
	})
	api := &localAPI{ln: &credListener{Listener: ln, logf: logf}, srv: &http.Server{Handler: mux,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) }}}
	go api.srv.Serve(api.ln)
	return api, nil
}

func (l *localAPI) Close() error { return l.srv.Close() }

// connKey finds a request's connection in its context, for the caller's credentials.
type connKey struct{}

// writeStatus answers with the agent's Status.
func (a *Agent) writeStatus(w http.ResponseWriter) {
	st := Status{State: string(a.node.State()), SSH: a.SSHEnabled(), Peers: []controlws.Node{}, KeyWarning: a.KeyWarning(),
		ControlURL: a.node.ControlURL(), ControlURLs: a.node.ControlURLs()}
	if nm := a.node.NetMap(); nm != nil {
		self := nm.Self
		st.Self, st.Peers, st.Users = &self, nm.Peers, nm.Users
		st.Paths = a.peerPaths(nm)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(st)
}

// removeStaleSocket removes a socket left by a dead agent, and refuses to start beside a live one.
func removeStaleSocket(path string) error {
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return fmt.Errorf("agent: another agent is serving %s", path)
	}
	return os.Remove(path)
}

// credListener accepts only connections from root or the agent's own user (SO_PEERCRED);
// any other caller is closed at once, so no other local user borrows the node's identity.
type credListener struct {
	net.Listener
	logf func(string, ...any)
}

func (l *credListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		uid, err := peerUID(c)
		if err == nil && (uid == 0 || uid == uint32(os.Getuid())) {
			return c, nil
		}
		l.logf("agent: local API refused a caller (uid %d, %v)", uid, err)
		c.Close()
	}
}
