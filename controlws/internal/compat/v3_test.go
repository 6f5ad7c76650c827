//go:build !js

package compat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"tsconnect/control"
	"tsconnect/controlws"
	"tsconnect/controlws/internal/v3client"
	"tsconnect/key"
	"tsconnect/policy/rules"
)

// v3follower folds a version 3 map stream into a map, as a version 3 node does, and fails on
// any message a version 3 node cannot read: another envelope version, or a filter delta
// (version 4's "filterDelta", which a version 3 node would drop, keeping its old filter).
type v3follower struct {
	c            *v3client.Client
	ch           <-chan v3client.Envelope
	nm           v3client.NetworkMap
	fulls, rules int
}

func (f *v3follower) until(t *testing.T, what string, ok func(*v3client.NetworkMap) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for f.fulls == 0 || !ok(&f.nm) {
		env, err := f.c.Next(ctx, f.ch)
		if err != nil {
			t.Fatalf("map stream, waiting for %s: %v", what, err)
		}
		if env.V != 3 {
			t.Fatalf("the server answered a version 3 client with a version %d %s message", env.V, env.Type)
		}
		var r v3client.MapResponse
		var fields map[string]json.RawMessage
		if err := v3client.Decode(env, &r); err != nil || env.Type != "mapResponse" || json.Unmarshal(env.Body, &fields) != nil {
			t.Fatalf("map stream, waiting for %s: %s message %s: %v", what, env.Type, env.Body, err)
		}
		if _, ok := fields["filterDelta"]; ok {
			t.Fatalf("a version 3 client got a filter delta: %s", env.Body)
		}
		switch {
		case r.KeepAlive:
			continue
		case r.Full != nil:
			f.fulls++
		case f.fulls == 0:
			t.Fatalf("a delta %s before the full map", env.Body)
		case r.Rules != nil:
			f.rules++
		}
		f.nm.Apply(&r)
	}
}

// sources is the sorted union of the sources of the filter of a version 3 map.
func sources(t *testing.T, nm *v3client.NetworkMap) []netip.Prefix {
	t.Helper()
	var f rules.Filter
	if err := json.Unmarshal(nm.PacketFilter, &f); err != nil {
		t.Fatalf("packet filter %s: %v", nm.PacketFilter, err)
	}
	var out []netip.Prefix
	for _, r := range f {
		out = append(out, r.Src...)
	}
	slices.SortFunc(out, rules.ComparePrefixes)
	return slices.Compact(out)
}

// TestV3Client runs the frozen version 3 client against the current server as a server that
// members reach: each member's join changes only the sources of its filter, which a version
// 4 client gets as a filter delta; the version 3 one gets its whole rules (never
// "filterDelta") and its filter lists exactly the members. Then it updates and logs out.
func TestV3Client(t *testing.T) {
	srv := startServer(t)
	s := srv.s
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alice, serverKey, _ := srv.network(t)
	if _, err := s.SetPolicy(ctx, []byte(`{
		"tagOwners": {"tag:server": ["alice@example.com"]},
		"acls": [{"action": "accept", "src": ["autogroup:member"], "dst": ["tag:server:22"]}],
	}`), "test"); err != nil {
		t.Fatal(err)
	}
	members, _, err := s.CreateAuthKey(ctx, control.AuthKeyOptions{User: alice.ID, Reusable: true})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := v3client.FetchKey(ctx, srv.url)
	if err != nil {
		t.Fatalf("a version 3 client's key fetch: %v", err)
	}
	v3, err := v3client.Dial(ctx, srv.url, pub, v3client.NewKeyPair())
	if err != nil {
		t.Fatalf("version 3 negotiation and handshake with the current server: %v", err)
	}
	defer v3.Close()
	nodeKey := v3client.Public(v3client.NewKeyPair())
	hi := v3client.Hostinfo{Hostname: "server", OS: "linux"}
	if _, err := v3.Register(ctx, serverKey, nodeKey, hi); err != nil {
		t.Fatalf("register: %v", err)
	}
	maps, err := v3.MapRequest(nodeKey, hi)
	if err != nil {
		t.Fatal(err)
	}
	f := &v3follower{c: v3, ch: maps}
	f.until(t, "the full map", func(*v3client.NetworkMap) bool { return true })
	if got := sources(t, &f.nm); len(got) != 0 {
		t.Fatalf("first filter admits %v, want nothing (no members yet)", got)
	}
	var want []netip.Prefix
	for i := range 3 {
		cur, err := controlws.Dial(ctx, controlws.DialOptions{ServerURL: srv.url, MachineKey: key.NewPrivate()})
		if err != nil {
			t.Fatal(err)
		}
		defer cur.Close()
		reg, err := cur.Register(ctx, controlws.RegisterRequest{AuthKey: members, NodeKey: key.NewPrivate().Public(), Hostinfo: controlws.Hostinfo{Hostname: fmt.Sprint("laptop", i)}})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, reg.Node.Addresses...)
		slices.SortFunc(want, rules.ComparePrefixes)
		rulesBefore := f.rules
		f.until(t, fmt.Sprintf("member %d in the filter", i), func(nm *v3client.NetworkMap) bool { return slices.Equal(sources(t, nm), want) })
		if f.fulls != 1 || f.rules == rulesBefore {
			t.Fatalf("member %d's join reached the version 3 server as %d full maps and %d rules deltas; want a rules delta", i, f.fulls, f.rules-rulesBefore)
		}
	}
	if err := v3.Update(ctx, v3client.Hostinfo{Hostname: "server", OS: "plan9"}); err != nil {
		t.Fatalf("update: %v", err)
	}
	f.until(t, "its own update", func(nm *v3client.NetworkMap) bool { return nm.Self.OS == "plan9" })
	if err := v3.Logout(ctx); err != nil {
		t.Fatalf("logout: %v", err)
	}
	select {
	case <-v3.Done():
	case <-ctx.Done():
		t.Fatal("the server kept the connection after logout")
	}
}
