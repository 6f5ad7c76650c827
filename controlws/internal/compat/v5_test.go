//go:build !js

package compat_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"tsconnect/control"
	"tsconnect/controlws"
	"tsconnect/controlws/internal/v5client"
	"tsconnect/key"
)

// TestV5Client runs the frozen version 5 client against the current server as a recorder
// node while recorded servers join: it gets each change of its recordFrom as whole `rules`
// listing every server, never `recordFromDelta` (version 6's), and a current recorder's map,
// which gets the deltas, lists the same servers.
func TestV5Client(t *testing.T) {
	srv := startServer(t)
	s := srv.s
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alice, _, _ := srv.network(t)
	if _, err := s.SetPolicy(ctx, []byte(`{
		"tagOwners": {"tag:server": ["alice@example.com"], "tag:rec": ["alice@example.com"]},
		"acls": [{"action": "accept", "src": ["tag:server"], "dst": ["tag:rec:8410"]}],
		"ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["tag:server"], "users": ["root"], "recorder": ["tag:rec"]}],
	}`), "test"); err != nil {
		t.Fatal(err)
	}
	mkKey := func(tag string) string {
		k, _, err := s.CreateAuthKey(ctx, control.AuthKeyOptions{User: alice.ID, Tags: []string{tag}, CreatedBy: alice.ID, Reusable: true})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	recKey, serverKey := mkKey("tag:rec"), mkKey("tag:server")
	join := func(authKey, name string) {
		t.Helper()
		c, err := controlws.Dial(ctx, controlws.DialOptions{ServerURL: srv.url, MachineKey: key.NewPrivate()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		nk := key.NewPrivate().Public()
		if _, err := c.Register(ctx, controlws.RegisterRequest{AuthKey: authKey, NodeKey: nk, Hostinfo: controlws.Hostinfo{Hostname: name}}); err != nil {
			t.Fatal(err)
		}
	}
	serverAddrs := func() []string {
		nodes, err := s.Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []netip.Addr
		for _, n := range nodes {
			if slices.Contains(n.Tags, "tag:server") {
				for _, a := range n.Addresses {
					out = append(out, a.Addr())
				}
			}
		}
		slices.SortFunc(out, netip.Addr.Compare)
		var str []string
		for _, a := range out {
			str = append(str, a.String())
		}
		return str
	}
	join(serverKey, "s0")

	pub, err := v5client.FetchKey(ctx, srv.url)
	if err != nil {
		t.Fatalf("a version 5 client's key fetch: %v", err)
	}
	c, err := v5client.Dial(ctx, srv.url, pub, v5client.NewKeyPair())
	if err != nil {
		t.Fatalf("version 5 negotiation and handshake with the current server: %v", err)
	}
	defer c.Close()
	nodeKey := v5client.Public(v5client.NewKeyPair())
	hi := v5client.Hostinfo{Hostname: "rec", OS: "linux"}
	if _, err := c.Register(ctx, recKey, nodeKey, hi); err != nil {
		t.Fatal(err)
	}
	maps, err := c.MapRequest(nodeKey, hi)
	if err != nil {
		t.Fatal(err)
	}
	var nm v5client.NetworkMap
	next := func() {
		t.Helper()
		env, err := c.Next(ctx, maps)
		if err != nil {
			t.Fatal(err)
		}
		if env.V != 5 || strings.Contains(string(env.Body), `"recordFromDelta"`) {
			t.Fatalf("a map message: version %d, %.300s; want version 5 without recordFromDelta", env.V, env.Body)
		}
		var r v5client.MapResponse
		if err := v5client.Decode(env, &r); err != nil {
			t.Fatal(err)
		}
		nm.Apply(&r)
	}
	next()
	if got, want := nm.RecordFrom, serverAddrs(); !slices.Equal(got, want) {
		t.Fatalf("the version 5 recorder's first map records for %v, want %v", got, want)
	}

	// A current recorder follows the same list through deltas.
	cur, err := controlws.Dial(ctx, controlws.DialOptions{ServerURL: srv.url, MachineKey: key.NewPrivate()})
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	nk := key.NewPrivate().Public()
	if _, err := cur.Register(ctx, controlws.RegisterRequest{AuthKey: recKey, NodeKey: nk, Hostinfo: controlws.Hostinfo{Hostname: "rec2"}}); err != nil {
		t.Fatal(err)
	}
	curFrom := make(chan []netip.Addr, 16)
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	go cur.WatchMaps(wctx, controlws.MapRequest{NodeKey: nk}, func(m *controlws.NetworkMap) { curFrom <- m.RecordFrom })

	for i := 1; i <= 3; i++ {
		join(serverKey, fmt.Sprint("s", i))
		want := serverAddrs()
		for deadline := time.Now().Add(20 * time.Second); !slices.Equal(nm.RecordFrom, want); {
			if time.Now().After(deadline) {
				t.Fatalf("after server %d joined the version 5 recorder records for %v, want %v", i, nm.RecordFrom, want)
			}
			next()
		}
	}
	want := serverAddrs()
	for deadline := time.After(20 * time.Second); ; {
		select {
		case got := <-curFrom:
			var str []string
			for _, a := range got {
				str = append(str, a.String())
			}
			if slices.Equal(str, want) {
				return
			}
		case <-deadline:
			t.Fatalf("the current recorder never recorded for %v", want)
		}
	}
}
