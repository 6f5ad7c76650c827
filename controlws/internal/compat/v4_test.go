//go:build !js

package compat_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"tsconnect/control"
	"tsconnect/controlws"
	"tsconnect/controlws/internal/v4client"
	"tsconnect/key"
	"tsconnect/policy/rules"
)

// TestV4Client runs the frozen version 4 client against the current server as an agent
// whose only SSH rule enforces recording (enforceRecorder), and as a recorder node: a
// version 4 agent may let such a login in unrecorded, so it gets the rule refusing, with no
// recorder; the version 4 recorder's map carries no recordFrom (version 5's), while a
// current recorder's lists the agent's addresses; sshAudit, version 5's message, is an
// unknown message type on a version 4 connection.
func TestV4Client(t *testing.T) {
	srv := startServer(t)
	s := srv.s
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alice, serverKey, _ := srv.network(t)
	if _, err := s.SetPolicy(ctx, []byte(`{
		"tagOwners": {"tag:server": ["alice@example.com"], "tag:rec": ["alice@example.com"]},
		"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
		"ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["tag:server"], "users": ["root"],
			"recorder": ["tag:rec"], "enforceRecorder": true}],
	}`), "test"); err != nil {
		t.Fatal(err)
	}
	recKey, _, err := s.CreateAuthKey(ctx, control.AuthKeyOptions{User: alice.ID, Tags: []string{"tag:rec"}, CreatedBy: alice.ID, Reusable: true})
	if err != nil {
		t.Fatal(err)
	}
	laptopKey, _, err := s.CreateAuthKey(ctx, control.AuthKeyOptions{User: alice.ID})
	if err != nil {
		t.Fatal(err)
	}
	cur, err := controlws.Dial(ctx, controlws.DialOptions{ServerURL: srv.url, MachineKey: key.NewPrivate()})
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	if _, err := cur.Register(ctx, controlws.RegisterRequest{AuthKey: laptopKey, NodeKey: key.NewPrivate().Public(), Hostinfo: controlws.Hostinfo{Hostname: "laptop"}}); err != nil {
		t.Fatal(err)
	}

	pub, err := v4client.FetchKey(ctx, srv.url)
	if err != nil {
		t.Fatalf("a version 4 client's key fetch: %v", err)
	}
	dial := func(authKey, name string) (*v4client.Client, *v4client.RegisterResponse, v4client.NetworkMap) {
		t.Helper()
		c, err := v4client.Dial(ctx, srv.url, pub, v4client.NewKeyPair())
		if err != nil {
			t.Fatalf("version 4 negotiation and handshake with the current server: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		nodeKey := v4client.Public(v4client.NewKeyPair())
		hi := v4client.Hostinfo{Hostname: name, OS: "linux"}
		reg, err := c.Register(ctx, authKey, nodeKey, hi)
		if err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
		maps, err := c.MapRequest(nodeKey, hi)
		if err != nil {
			t.Fatal(err)
		}
		env, err := c.Next(ctx, maps)
		if err != nil {
			t.Fatal(err)
		}
		if env.V != 4 || strings.Contains(string(env.Body), `"recordFrom"`) {
			t.Fatalf("%s's first map message: version %d, %.300s; want version 4 without recordFrom", name, env.V, env.Body)
		}
		var r v4client.MapResponse
		if err := v4client.Decode(env, &r); err != nil || r.Full == nil {
			t.Fatalf("%s's first map message %.300s: %v", name, env.Body, err)
		}
		return c, reg, *r.Full
	}
	recorder, _, _ := dial(recKey, "rec")
	_, _, nm := dial(serverKey, "server")
	var ssh []rules.SSHRule
	if err := json.Unmarshal(nm.SSHRules, &ssh); err != nil {
		t.Fatal(err)
	}
	if len(ssh) != 1 || ssh[0].Action != rules.Reject || len(ssh[0].Recorders) != 0 {
		t.Fatalf("the version 4 agent's SSH rules %s; want its enforcing rule as a refusal, naming no recorder", nm.SSHRules)
	}

	// A current recorder's map lists the agent (the server) it may take recordings from.
	curRec, err := controlws.Dial(ctx, controlws.DialOptions{ServerURL: srv.url, MachineKey: key.NewPrivate()})
	if err != nil {
		t.Fatal(err)
	}
	defer curRec.Close()
	nk := key.NewPrivate().Public()
	if _, err := curRec.Register(ctx, controlws.RegisterRequest{AuthKey: recKey, NodeKey: nk, Hostinfo: controlws.Hostinfo{Hostname: "rec2"}}); err != nil {
		t.Fatal(err)
	}
	got := make(chan []netip.Addr, 1)
	wctx, wcancel := context.WithCancel(ctx)
	go curRec.WatchMaps(wctx, controlws.MapRequest{NodeKey: nk}, func(m *controlws.NetworkMap) {
		select {
		case got <- m.RecordFrom:
		default:
		}
		wcancel()
	})
	from := <-got
	nodes, err := s.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(nodes, func(n controlws.Node) bool { return n.Name == "server" })
	ok := i >= 0
	var p controlws.Node
	if ok {
		p = nodes[i]
	}
	var want []netip.Addr
	for _, a := range p.Addresses {
		want = append(want, a.Addr())
	}
	slices.SortFunc(want, netip.Addr.Compare)
	if !ok || !slices.Equal(from, want) {
		t.Errorf("a current recorder may take recordings from %v, want the server's %v", from, want)
	}

	err = recorder.Call(ctx, "sshAudit", map[string]any{"records": []any{}}, nil)
	if err == nil || !strings.Contains(err.Error(), "unknown message type") {
		t.Errorf("sshAudit on a version 4 connection: %v; want an unknown message type", err)
	}
}
