//go:build !js

package compat_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"tsconnect/controlws"
	"tsconnect/controlws/internal/v2client"
	"tsconnect/key"
	"tsconnect/policy/rules"
)

// v2follower folds a version 2 map stream into a map, as a version 2 node does, and fails on
// any message a version 2 node cannot read: another envelope version, or a rules delta
// (version 3's "rules", which a version 2 node would drop, keeping its old filter).
type v2follower struct {
	c      *v2client.Client
	ch     <-chan v2client.Envelope
	nm     v2client.NetworkMap
	fulls  int
	deltas int
}

func (f *v2follower) until(t *testing.T, what string, ok func(*v2client.NetworkMap) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for f.fulls == 0 || !ok(&f.nm) {
		env, err := f.c.Next(ctx, f.ch)
		if err != nil {
			t.Fatalf("map stream, waiting for %s: %v", what, err)
		}
		if env.V != 2 {
			t.Fatalf("the server answered a version 2 client with a version %d %s message", env.V, env.Type)
		}
		var r v2client.MapResponse
		var fields map[string]json.RawMessage
		if err := v2client.Decode(env, &r); err != nil || env.Type != "mapResponse" || json.Unmarshal(env.Body, &fields) != nil {
			t.Fatalf("map stream, waiting for %s: %s message %s: %v", what, env.Type, env.Body, err)
		}
		if _, ok := fields["rules"]; ok {
			t.Fatalf("a version 2 client got a rules delta: %s", env.Body)
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

// filterOf is the packet filter of a version 2 map.
func filterOf(t *testing.T, nm *v2client.NetworkMap) rules.Filter {
	t.Helper()
	var f rules.Filter
	if err := json.Unmarshal(nm.PacketFilter, &f); err != nil {
		t.Fatalf("packet filter %s: %v", nm.PacketFilter, err)
	}
	return f
}

// onlyPorts reports whether every rule of f lets in exactly the one port.
func onlyPorts(f rules.Filter, port uint16) bool {
	for _, r := range f {
		if len(r.Ports) != 1 || r.Ports[0] != (rules.PortRange{First: port, Last: port}) {
			return false
		}
	}
	return len(f) > 0
}

// TestV2Client runs the frozen version 2 client against the current server: it negotiates version 2,
// registers, follows its map (full, then a peer's join as a delta), and when the policy changes its
// rules it gets a full map carrying the new filter and its peers (never version 3's rules delta);
// then it updates its host info and logs out.
func TestV2Client(t *testing.T) {
	srv := startServer(t)
	s := srv.s
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, serverKey, laptopKey := srv.network(t)

	pub, err := v2client.FetchKey(ctx, srv.url)
	if err != nil {
		t.Fatalf("a version 2 client's key fetch: %v", err)
	}
	if pub != v2client.Key(s.PublicKey()) {
		t.Fatal("GET /key gave the version 2 client another key than the server's")
	}
	v2, err := v2client.Dial(ctx, srv.url, pub, v2client.NewKeyPair())
	if err != nil {
		t.Fatalf("version 2 negotiation and handshake with the current server: %v", err)
	}
	defer v2.Close()
	nodeKey := v2client.Public(v2client.NewKeyPair())
	hi := v2client.Hostinfo{Hostname: "laptop", OS: "linux"}
	reg, err := v2.Register(ctx, laptopKey, nodeKey, hi)
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	maps, err := v2.MapRequest(nodeKey, hi)
	if err != nil {
		t.Fatal(err)
	}
	f := &v2follower{c: v2, ch: maps}
	f.until(t, "the full map", func(*v2client.NetworkMap) bool { return true })
	if nm := &f.nm; nm.Self.ID != reg.Node.ID || len(nm.Peers) != 0 || len(nm.DERPMap) == 0 || onlyPorts(filterOf(t, nm), 22) || len(filterOf(t, nm)) == 0 {
		t.Fatalf("first map %+v; want self, a DERP map, no peers and the filter of every port", nm)
	}

	// A current client joins: a delta.
	cur, err := controlws.Dial(ctx, controlws.DialOptions{ServerURL: srv.url, MachineKey: key.NewPrivate()})
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	sk := key.NewPrivate().Public()
	sr, err := cur.Register(ctx, controlws.RegisterRequest{AuthKey: serverKey, NodeKey: sk, Hostinfo: controlws.Hostinfo{Hostname: "server", OS: "linux"}})
	if err != nil {
		t.Fatal(err)
	}
	go cur.WatchMaps(ctx, controlws.MapRequest{NodeKey: sk, Hostinfo: controlws.Hostinfo{Hostname: "server", OS: "linux"}}, func(*controlws.NetworkMap) {})
	f.until(t, "the server online", func(nm *v2client.NetworkMap) bool {
		for _, p := range nm.Peers {
			if p.ID == sr.Node.ID && p.Online {
				return true
			}
		}
		return false
	})
	if f.fulls != 1 || f.deltas == 0 {
		t.Fatalf("a peer's join reached the version 2 node as %d full maps and %d deltas; want deltas", f.fulls, f.deltas)
	}

	// The policy narrows every node's inbound rules to port 22: a full map with the new filter and
	// the same peer.
	narrowed := `{
		"tagOwners": {"tag:server": ["alice@example.com"]},
		"acls": [{"action": "accept", "src": ["*"], "dst": ["*:22"]}],
	}`
	if _, err := s.SetPolicy(ctx, []byte(narrowed), "test"); err != nil {
		t.Fatal(err)
	}
	fulls := f.fulls
	f.until(t, "the narrowed filter", func(nm *v2client.NetworkMap) bool { return onlyPorts(filterOf(t, nm), 22) })
	if f.fulls == fulls {
		t.Fatal("a rules change reached the version 2 node without a full map")
	}
	if len(f.nm.Peers) != 1 || f.nm.Peers[0].ID != sr.Node.ID || f.nm.Self.ID != reg.Node.ID {
		t.Fatalf("the full map after the rules change: self %d, peers %+v; want the server as its one peer", f.nm.Self.ID, f.nm.Peers)
	}

	// Update and logout, as version 2 does them.
	if err := v2.Update(ctx, v2client.Hostinfo{Hostname: "laptop", OS: "plan9"}); err != nil {
		t.Fatalf("update: %v", err)
	}
	f.until(t, "its own update", func(nm *v2client.NetworkMap) bool { return nm.Self.OS == "plan9" })
	if err := v2.Logout(ctx); err != nil {
		t.Fatalf("logout: %v", err)
	}
	select {
	case <-v2.Done():
	case <-ctx.Done():
		t.Fatal("the server kept the connection after logout")
	}
}
