//go:build !js

package compat_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"tsconnect/control"
	"tsconnect/controlws"
	"tsconnect/controlws/internal/v1client"
	"tsconnect/key"
)

// policy: alice's machines may SSH to the tagged server as root after re-authenticating within the
// hour, and as daemon after re-authenticating every time.
const policy = `{
	"tagOwners": {"tag:server": ["alice@example.com"]},
	"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
	"ssh": [
		{"action": "check", "src": ["autogroup:member"], "dst": ["tag:server"], "users": ["root"], "checkPeriod": "1h"},
		{"action": "check", "src": ["autogroup:member"], "dst": ["tag:server"], "users": ["daemon"], "checkPeriod": "always"},
	],
}`

// server is the current control server on a real SQLite file behind a loopback HTTP server.
type server struct {
	s   *control.Server
	url string
}

func startServer(t *testing.T) *server {
	t.Helper()
	var h atomic.Pointer[http.Handler]
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*h.Load()).ServeHTTP(w, r) }))
	s, err := control.New(control.Config{StateDir: t.TempDir(), ServerURL: hs.URL, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	handler := s.Handler()
	h.Store(&handler)
	t.Cleanup(func() {
		s.Close()
		hs.CloseClientConnections()
		hs.Close()
	})
	return &server{s: s, url: hs.URL}
}

// network gives the server alice, the policy, and two auth keys of hers: one for a
// machine tagged tag:server, one for a machine she owns.
func (srv *server) network(t *testing.T) (alice control.User, serverKey, laptopKey string) {
	t.Helper()
	ctx := context.Background()
	s := srv.s
	alice, err := s.CreateUser(ctx, "alice@example.com", control.RoleMember)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetPolicy(ctx, []byte(policy), "test"); err != nil {
		t.Fatal(err)
	}
	if serverKey, _, err = s.CreateAuthKey(ctx, control.AuthKeyOptions{User: alice.ID, Tags: []string{"tag:server"}, CreatedBy: alice.ID}); err != nil {
		t.Fatal(err)
	}
	if laptopKey, _, err = s.CreateAuthKey(ctx, control.AuthKeyOptions{User: alice.ID}); err != nil {
		t.Fatal(err)
	}
	return alice, serverKey, laptopKey
}

// next waits for the next message on ch (a v1 client's answers to one request).
func next(t *testing.T, c *v1client.Client, ch <-chan v1client.Envelope) v1client.Envelope {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	env, err := c.Next(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	if env.V != 1 {
		t.Fatalf("the server answered a version 1 client with a version %d %s message", env.V, env.Type)
	}
	return env
}

// follower folds a version 1 map stream into a map, as a version 1 node does.
type follower struct {
	c      *v1client.Client
	ch     <-chan v1client.Envelope
	nm     v1client.NetworkMap
	fulls  int // full maps received
	deltas int // deltas received (keep-alives not counted)
}

// until applies map messages until ok holds for the map.
func (f *follower) until(t *testing.T, what string, ok func(*v1client.NetworkMap) bool) {
	t.Helper()
	for f.fulls == 0 || !ok(&f.nm) {
		env := next(t, f.c, f.ch)
		var r v1client.MapResponse
		if err := v1client.Decode(env, &r); err != nil || env.Type != "mapResponse" {
			t.Fatalf("map stream, waiting for %s: %s message %s: %v", what, env.Type, env.Body, err)
		}
		switch {
		case r.KeepAlive:
			continue
		case r.Full != nil:
			f.fulls++
		case f.fulls == 0:
			t.Fatalf("a delta %s before the full map", env.Body)
		default:
			f.deltas++
		}
		f.nm.Apply(&r)
	}
}

func peer(nm *v1client.NetworkMap, id int64) (v1client.Node, bool) {
	for _, p := range nm.Peers {
		if p.ID == id {
			return p, true
		}
	}
	return v1client.Node{}, false
}

// TestV1Client runs the frozen version 1 client against the current server through everything a
// version 1 node does: fetch the key, register with an auth key, follow its map (full, then deltas as a
// peer joins and changes), update its host info, a check held until the user re-authenticates and one
// given up, and logout. Every answer it gets must be a version 1 envelope it can read.
func TestV1Client(t *testing.T) {
	srv := startServer(t)
	s := srv.s
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alice, serverKey, laptopKey := srv.network(t)

	// The version 1 node: the tagged server, whose agent asks for checks.
	pub, err := v1client.FetchKey(ctx, srv.url)
	if err != nil {
		t.Fatalf("a version 1 client's key fetch: %v", err)
	}
	if pub != v1client.Key(s.PublicKey()) {
		t.Fatal("GET /key gave the version 1 client another key than the server's")
	}
	v1, err := v1client.Dial(ctx, srv.url, pub, v1client.NewKeyPair())
	if err != nil {
		t.Fatalf("version 1 handshake with the current server: %v", err)
	}
	defer v1.Close()
	nodeKey := v1client.Public(v1client.NewKeyPair())
	reg, err := v1.Register(ctx, serverKey, nodeKey, v1client.Hostinfo{Hostname: "server", OS: "linux"})
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	if reg.Node.Name != "server" || reg.Node.Key != nodeKey || len(reg.Node.Addresses) != 2 || len(reg.Node.Tags) != 1 || reg.Node.Tags[0] != "tag:server" {
		t.Fatalf("registerResponse node %+v", reg.Node)
	}

	maps, err := v1.MapRequest(nodeKey, v1client.Hostinfo{Hostname: "server", OS: "linux", HomeDERP: 1})
	if err != nil {
		t.Fatal(err)
	}
	f := &follower{c: v1, ch: maps}
	f.until(t, "the full map", func(*v1client.NetworkMap) bool { return true })
	if nm := f.nm; nm.Self.ID != reg.Node.ID || nm.Self.Name != "server" || len(nm.Peers) != 0 || len(nm.DERPMap) == 0 || nm.Domain == "" {
		t.Fatalf("first map %+v; want the full map with self, a DERP map and no peers", nm)
	}

	// A current client joins: the version 1 node gets it as a delta.
	cur, err := controlws.Dial(ctx, controlws.DialOptions{ServerURL: srv.url, MachineKey: key.NewPrivate()})
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	lk := key.NewPrivate().Public()
	lr, err := cur.Register(ctx, controlws.RegisterRequest{AuthKey: laptopKey, NodeKey: lk, Hostinfo: controlws.Hostinfo{Hostname: "laptop", OS: "linux"}})
	if err != nil {
		t.Fatal(err)
	}
	laptop := lr.Node
	laptopMaps := make(chan *controlws.NetworkMap, 64)
	go cur.WatchMaps(ctx, controlws.MapRequest{NodeKey: lk, Hostinfo: controlws.Hostinfo{Hostname: "laptop", OS: "linux"}}, func(nm *controlws.NetworkMap) { laptopMaps <- nm })
	f.until(t, "the laptop online", func(nm *v1client.NetworkMap) bool { p, ok := peer(nm, laptop.ID); return ok && p.Online })
	// The laptop changes: the version 1 node gets it as a delta.
	if err := cur.Update(ctx, controlws.Hostinfo{Hostname: "laptop", OS: "plan9"}); err != nil {
		t.Fatal(err)
	}
	deltas := f.deltas
	f.until(t, "the laptop's update", func(nm *v1client.NetworkMap) bool { p, _ := peer(nm, laptop.ID); return p.OS == "plan9" })
	if f.deltas == deltas {
		t.Fatalf("a peer's host-info change reached the version 1 node as a full map (%d fulls), not a delta", f.fulls)
	}

	// Update: the version 1 node now serves SSH; its peer sees it.
	const hostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
	if err := v1.Update(ctx, v1client.Hostinfo{Hostname: "server", OS: "linux", HomeDERP: 1, SSH: true, SSHHostKeys: []string{hostKey}}); err != nil {
		t.Fatalf("update: %v", err)
	}
	for seen := false; !seen; {
		select {
		case nm := <-laptopMaps:
			p, ok := nm.PeerByName("server")
			seen = ok && p.SSH && len(p.SSHHostKeys) == 1 && p.SSHHostKeys[0] == hostKey
		case <-ctx.Done():
			t.Fatal("the laptop never saw the version 1 node's update")
		}
	}

	// A check held until alice re-authenticates, then accepted.
	check := v1client.SSHCheckRequest{SrcNode: laptop.ID, SrcAddr: strings.Split(laptop.Addresses[0].String(), "/")[0], User: "root", LocalUser: "root", CheckPeriod: time.Hour}
	_, verdicts, err := v1.Send("sshCheck", &check)
	if err != nil {
		t.Fatal(err)
	}
	var pending v1client.SSHCheckVerdict
	if env := next(t, v1, verdicts); v1client.Decode(env, &pending) != nil || pending.Verdict != "pending" || pending.User != "alice@example.com" {
		t.Fatalf("first check answer %s %s; want pending for alice", env.Type, env.Body)
	}
	id, ok := strings.CutPrefix(pending.URL, srv.url+"/check/")
	if !ok {
		t.Fatalf("check URL %q is not under %s/check/", pending.URL, srv.url)
	}
	if err := s.CompleteCheck(ctx, id, alice.ID, control.AuthPassword); err != nil {
		t.Fatal(err)
	}
	var final v1client.SSHCheckVerdict
	if env := next(t, v1, verdicts); v1client.Decode(env, &final) != nil || final.Verdict != "accept" {
		t.Fatalf("check after alice re-authenticated: %s %s; want accept", env.Type, env.Body)
	}

	// A check given up with sshCheckCancel: rejected.
	check.User, check.LocalUser, check.CheckPeriod = "daemon", "daemon", 0
	checkID, verdicts, err := v1.Send("sshCheck", &check)
	if err != nil {
		t.Fatal(err)
	}
	if env := next(t, v1, verdicts); v1client.Decode(env, &pending) != nil || pending.Verdict != "pending" {
		t.Fatalf("check for daemon: %s %s; want pending", env.Type, env.Body)
	}
	if err := v1.SendID("sshCheckCancel", checkID, nil); err != nil {
		t.Fatal(err)
	}
	if env := next(t, v1, verdicts); v1client.Decode(env, &final) != nil || final.Verdict != "reject" {
		t.Fatalf("check after cancel: %s %s; want reject", env.Type, env.Body)
	}

	// Its own update came back as its own entry.
	f.until(t, "its own update", func(nm *v1client.NetworkMap) bool { return nm.Self.SSH && len(nm.Self.SSHHostKeys) == 1 })

	// Logout: ok, then the map stream ends saying why.
	if err := v1.Logout(ctx); err != nil {
		t.Fatalf("logout: %v", err)
	}
	for {
		env := next(t, v1, maps)
		if env.Type == "mapResponse" {
			continue // a delta sent before the logout
		}
		var e *v1client.Error
		if err := v1client.Decode(env, nil); !errors.As(err, &e) || e.Code != controlws.CodeNotRegistered {
			t.Fatalf("map stream after logout: %s %s; want error %s", env.Type, env.Body, controlws.CodeNotRegistered)
		}
		break
	}
	select {
	case <-v1.Done():
	case <-ctx.Done():
		t.Fatal("the server kept the connection after logout")
	}
}

// TestNewerOfferFallsBack: a client newer than the current server (it offers Version+1) gets the
// server's newest version in the plain answer, so it falls back to it; a malformed offer gets 400.
func TestNewerOfferFallsBack(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(srv.url, "http") + controlws.Path
	ws, _, err := websocket.Dial(ctx, wsURL+"?"+controlws.VersionParam+"="+strconv.Itoa(controlws.Version+1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	_, msg, err := ws.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		Version, Min, Max int
		Error             string
	}
	if len(msg) < 2 || int(binary.BigEndian.Uint16(msg)) != len(msg)-2 || json.Unmarshal(msg[2:], &answer) != nil {
		t.Fatalf("answer to a newer offer: %q; want one length-prefixed JSON message", msg)
	}
	if answer.Version != controlws.Version || answer.Min != controlws.MinVersion || answer.Max != controlws.Version || answer.Error != "" {
		t.Fatalf("answer to an offer of %d: %+v; want version %d of %d–%d", controlws.Version+1, answer, controlws.Version, controlws.MinVersion, controlws.Version)
	}

	resp, err := http.Get(srv.url + controlws.Path + "?v=banana")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("malformed offer: %s; want 400", resp.Status)
	}
}
