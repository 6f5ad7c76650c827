//go:build !js

package controlws

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"tsconnect/internal/leakcheck"
	"tsconnect/key"
)

// watch runs WatchMaps in the background and hands each map to the returned channel.
func watch(t *testing.T, c *Client, req MapRequest) (maps <-chan *NetworkMap, done <-chan error, cancel func()) {
	ctx, cancel := context.WithCancel(context.Background())
	mc, ec := make(chan *NetworkMap, 64), make(chan error, 1)
	go func() { ec <- c.WatchMaps(ctx, req, func(nm *NetworkMap) { mc <- nm }) }()
	t.Cleanup(cancel)
	return mc, ec, cancel
}

func TestRoundTrip(t *testing.T) {
	leakcheck.Check(t)
	s := newTestServer(t)
	machine := key.NewPrivate()
	c := dial(t, s, DialOptions{MachineKey: machine}) // server key fetched from /key
	if c.ServerKey() != s.key.Public() {
		t.Fatalf("ServerKey = %v, want %v", c.ServerKey(), s.key.Public())
	}
	ctx := context.Background()
	nodeKey := key.NewPrivate().Public()

	// A wrong auth key is refused with a code a program can switch on.
	_, err := c.Register(ctx, RegisterRequest{AuthKey: "tskey-wrong", NodeKey: nodeKey})
	var cerr *Error
	if !errors.As(err, &cerr) || cerr.Code != CodeInvalidKey {
		t.Fatalf("Register with a wrong auth key: err = %v, want *Error with code %s", err, CodeInvalidKey)
	}

	resp, err := c.Register(ctx, RegisterRequest{AuthKey: goodAuthKey, NodeKey: nodeKey, Hostinfo: Hostinfo{Hostname: "laptop", OS: "linux"}})
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	if resp.Node.Key != nodeKey || resp.Node.MachineKey != machine.Public() || resp.User.LoginName != "alice@example.com" {
		t.Fatalf("RegisterResponse = %+v", resp)
	}

	maps, done, _ := watch(t, c, MapRequest{NodeKey: nodeKey, Hostinfo: Hostinfo{Hostname: "laptop"}})
	full := <-maps
	if full.Self.Key != nodeKey || len(full.Peers) != 0 || full.DERPMap == nil || full.DERPMap.Regions[1].RegionCode != "lo" {
		t.Fatalf("full map = %+v", full)
	}
	ms := s.waitStream(t)

	// Deltas: a peer arrives, another arrives, the first changes, the second leaves; keep-alives change nothing.
	steps := []struct {
		r     MapResponse
		names []string
	}{
		{MapResponse{PeersChanged: []Node{testPeer(7)}}, []string{"peer-7"}},
		{MapResponse{PeersChanged: []Node{testPeer(8)}, Users: []UserProfile{{ID: 2, LoginName: "bob@example.com"}}}, []string{"peer-7", "peer-8"}},
		{MapResponse{KeepAlive: true}, nil},
		{MapResponse{PeersChanged: []Node{func() Node { n := testPeer(7); n.Name = "renamed"; return n }()}}, []string{"renamed", "peer-8"}},
		{MapResponse{PeersRemoved: []int64{8}}, []string{"renamed"}},
	}
	var kept []*NetworkMap
	for i, st := range steps {
		if err := ms.push(st.r); err != nil {
			t.Fatal(err)
		}
		if st.names == nil {
			continue // a keep-alive yields no call; the next step's map proves it was absorbed
		}
		nm := <-maps
		var names []string
		for _, p := range nm.Peers {
			names = append(names, p.Name)
		}
		if strings.Join(names, ",") != strings.Join(st.names, ",") {
			t.Fatalf("after delta %d: peers %v, want %v", i, names, st.names)
		}
		kept = append(kept, nm)
	}
	if _, ok := kept[1].UserByID(2); !ok {
		t.Error("user from a delta missing")
	}
	if kept[0].Peers[0].Name != "peer-7" || len(kept[1].Peers) != 2 {
		t.Error("a map handed to fn changed after later deltas")
	}

	// Update and Logout work while the stream runs.
	if err := c.Update(ctx, Hostinfo{Hostname: "laptop-2"}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if nm := <-maps; nm.Self.Hostname != "laptop-2" {
		t.Fatalf("after Update, Self.Hostname = %q", nm.Self.Hostname)
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	err = <-done
	if !errors.As(err, &cerr) || cerr.Code != CodeNodeDeleted {
		t.Fatalf("WatchMaps after Logout: %v, want *Error %s", err, CodeNodeDeleted)
	}
	if accepted, _, _ := s.stats(); accepted != 1 || s.accepted[0] != machine.Public() {
		t.Fatalf("server saw machine keys %v, want [%v]", s.accepted, machine.Public())
	}
}

func TestWatchMapsErrors(t *testing.T) {
	leakcheck.Check(t)
	s := newTestServer(t)
	c := dial(t, s, DialOptions{ServerKey: s.key.Public()})
	ctx := context.Background()

	// The stream's error comes back as *Error.
	err := c.WatchMaps(ctx, MapRequest{NodeKey: key.NewPrivate().Public()}, func(*NetworkMap) { t.Error("fn called") })
	var cerr *Error
	if !errors.As(err, &cerr) || cerr.Code != CodeNotRegistered {
		t.Fatalf("WatchMaps unregistered: %v", err)
	}

	// ctx ending stops WatchMaps; the client stays usable.
	nodeKey := key.NewPrivate().Public()
	if _, err := c.Register(ctx, RegisterRequest{AuthKey: goodAuthKey, NodeKey: nodeKey}); err != nil {
		t.Fatal(err)
	}
	maps, done, cancel := watch(t, c, MapRequest{NodeKey: nodeKey})
	<-maps
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("WatchMaps after cancel: %v", err)
	}
	if err := c.Update(ctx, Hostinfo{Hostname: "x"}); err != nil {
		t.Fatalf("Update after WatchMaps ended: %v", err)
	}

	// The server going away ends a running WatchMaps with an error, and later calls fail fast.
	maps, done, _ = watch(t, c, MapRequest{NodeKey: nodeKey})
	<-maps
	s.Close()
	if err := <-done; err == nil {
		t.Fatal("WatchMaps returned nil after the server closed")
	}
	<-c.Done()
	if _, err := c.Register(ctx, RegisterRequest{NodeKey: nodeKey}); err == nil {
		t.Fatal("Register on a dead connection succeeded")
	}
	c.Close()
	if err := c.Update(ctx, Hostinfo{}); err == nil {
		t.Fatal("Update after Close succeeded")
	}
}

func TestWrongServerKey(t *testing.T) {
	leakcheck.Check(t)
	s := newTestServer(t)
	_, err := Dial(context.Background(), DialOptions{ServerURL: s.url, ServerKey: key.NewPrivate().Public(), MachineKey: key.NewPrivate()})
	if err == nil || !strings.Contains(err.Error(), "server key did not match") {
		t.Fatalf("Dial with a wrong pinned key: %v, want an error saying the server key did not match", err)
	}
	if err := <-s.acceptEv; err == nil || !strings.Contains(err.Error(), "did not decrypt") {
		t.Fatalf("server side: %v, want a handshake that did not decrypt", err)
	}
}

func TestKeyEndpoint(t *testing.T) {
	s := newTestServer(t)
	resp, err := http.Get(s.url + KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var kr struct {
		Key        string `json:"key"`
		Version    int    `json:"version"` // the oldest spoken: version 1 clients demand 1
		MaxVersion int    `json:"maxVersion"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&kr); err != nil {
		t.Fatal(err)
	}
	if kr.Key != s.key.Public().String() || kr.Version != MinVersion || kr.MaxVersion != Version {
		t.Fatalf("GET /key = %+v", kr)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Fatalf("Access-Control-Allow-Origin = %q", got)
	}

	// A server of another version is named as such before any WebSocket opens.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != KeyPath {
			t.Errorf("client asked for %s of a server it cannot speak to", r.URL)
		}
		w.Write([]byte(`{"key":"` + s.key.Public().String() + `","version":` + strconv.Itoa(Version+1) + `}`))
	}))
	defer other.Close()
	_, err = Dial(context.Background(), DialOptions{ServerURL: other.URL, MachineKey: key.NewPrivate()})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("speaks control protocol version %d, yours up to %d", Version+1, Version)) {
		t.Fatalf("Dial to a v%d server: %v", Version+1, err)
	}

	// HTTPGet replaces net/http for the key fetch (the wasm passes one built on fetch).
	var fetched string
	c := dial(t, s, DialOptions{HTTPGet: func(ctx context.Context, url string) ([]byte, error) {
		fetched = url
		return json.Marshal(KeyResponse{Key: s.key.Public(), MinVersion: MinVersion, MaxVersion: Version})
	}})
	c.Close()
	if fetched != s.url+KeyPath {
		t.Fatalf("HTTPGet called with %q", fetched)
	}
}

func TestLargeMap(t *testing.T) {
	leakcheck.Check(t)
	s := newTestServer(t)
	s.peers = 1200
	machine := key.NewPrivate()
	c := dial(t, s, DialOptions{MachineKey: machine})
	ctx := context.Background()
	nodeKey := key.NewPrivate().Public()
	if _, err := c.Register(ctx, RegisterRequest{AuthKey: goodAuthKey, NodeKey: nodeKey, Hostinfo: Hostinfo{Hostname: "big"}}); err != nil {
		t.Fatal(err)
	}
	maps, _, cancel := watch(t, c, MapRequest{NodeKey: nodeKey, Hostinfo: Hostinfo{Hostname: "big"}})
	got := <-maps
	cancel()
	wantJSON, _ := json.Marshal(s.fullMap(s.nodeFor(nodeKey, machine.Public(), Hostinfo{Hostname: "big"})))
	gotJSON, _ := json.Marshal(got)
	if len(wantJSON) < 200<<10 {
		t.Fatalf("test map is only %d bytes", len(wantJSON))
	}
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Fatalf("map of %d bytes arrived as %d different bytes", len(wantJSON), len(gotJSON))
	}
	t.Logf("map of %d bytes (%d peers) crossed intact", len(wantJSON), len(got.Peers))
}

// dialRaw opens a bare WebSocket to s's control path with query (e.g. "?v=2", or ""): an attacker's view.
func dialRaw(t *testing.T, s *testServer, query string) *websocket.Conn {
	ws, _, err := websocket.Dial(context.Background(), strings.Replace(s.url, "http", "ws", 1)+Path+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return ws
}

// TestWatchMapsSilence: a stream that keeps bringing keep-alives runs on; one that brings
// nothing for MapSilence ends with ErrMapSilent, as when control's machine vanished without
// the connection saying so.
func TestWatchMapsSilence(t *testing.T) {
	leakcheck.Check(t)
	s := newTestServer(t)
	const silence = 2 * time.Second
	c := dial(t, s, DialOptions{ServerKey: s.key.Public(), MapSilence: silence})
	nodeKey := key.NewPrivate().Public()
	if _, err := c.Register(context.Background(), RegisterRequest{AuthKey: goodAuthKey, NodeKey: nodeKey}); err != nil {
		t.Fatal(err)
	}
	maps, done, _ := watch(t, c, MapRequest{NodeKey: nodeKey})
	<-maps
	ms := s.waitStream(t)
	for range 7 { // 7 × silence/5: longer than MapSilence in all, never silent that long
		time.Sleep(silence / 5)
		if err := ms.push(MapResponse{KeepAlive: true}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-done:
		t.Fatalf("a stream with keep-alives ended: %v", err)
	default:
	}
	if err := <-done; !errors.Is(err, ErrMapSilent) {
		t.Fatalf("WatchMaps on a silent stream: %v, want ErrMapSilent", err)
	}
}
