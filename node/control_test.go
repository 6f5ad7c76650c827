//go:build !js

package node

import (
	"context"
	"sync"
	"testing"
	"time"

	"tsconnect/control"
	"tsconnect/control/controltest"
	"tsconnect/controlws"
)

// Tests of a Node against a real control server (SQLite in a temporary directory, its
// embedded relay) on loopback.

// openPolicy lets every node reach every port of every other.
const openPolicy = `{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}`

// closedPolicy lets nothing through.
const closedPolicy = `{"acls": []}`

// testControl is control serving on loopback (control/controltest), with alice as its admin.
type testControl struct {
	*controltest.Server
	t     *testing.T
	alice control.User
}

func startControl(t *testing.T) *testControl {
	t.Helper()
	tc := &testControl{Server: controltest.New(t, nil), t: t}
	tc.alice = tc.User("alice@example.com", control.RoleAdmin)
	tc.setPolicy(openPolicy)
	return tc
}

func (tc *testControl) setPolicy(src string) {
	tc.t.Helper()
	if _, err := tc.Control.SetPolicy(context.Background(), []byte(src), "node test"); err != nil {
		tc.t.Fatal(err)
	}
}

func (tc *testControl) authKey(o control.AuthKeyOptions) string {
	tc.t.Helper()
	if o.User == 0 && len(o.Tags) == 0 {
		o.User = tc.alice.ID
	}
	return tc.AuthKey(o)
}

// testNode is a started Node with what it reported.
type testNode struct {
	*Node
	mu     sync.Mutex
	states []State
	maps   chan *controlws.NetworkMap
}

// newNode makes (not starts) a node of tc named name; opts may be adjusted before Start.
func newNode(t *testing.T, tc *testControl, name string, opts Options) *testNode {
	t.Helper()
	tn := &testNode{maps: make(chan *controlws.NetworkMap, 64)}
	opts.ControlURL, opts.Hostname = tc.URL, name
	opts.Logf = func(format string, args ...any) { t.Logf(name+": "+format, args...) }
	opts.OnState = func(s State) { tn.mu.Lock(); tn.states = append(tn.states, s); tn.mu.Unlock() }
	opts.OnNetMap = func(nm *controlws.NetworkMap) { tn.maps <- nm }
	n, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	tn.Node = n
	t.Cleanup(func() { n.Close() })
	return tn
}

// startNode starts a node of tc registered with a fresh auth key.
func startNode(t *testing.T, tc *testControl, name string) *testNode {
	t.Helper()
	n := newNode(t, tc, name, Options{AuthKey: tc.authKey(control.AuthKeyOptions{})})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	return n
}

// waitMap waits for a map (from OnNetMap) that ok accepts.
func (n *testNode) waitMap(t *testing.T, what string, ok func(*controlws.NetworkMap) bool) *controlws.NetworkMap {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case nm := <-n.maps:
			if ok(nm) {
				return nm
			}
		case <-deadline:
			t.Fatalf("no map with %s within 20 s", what)
		}
	}
}

func (n *testNode) stateLog() []State {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]State(nil), n.states...)
}

func hasPeer(name string) func(*controlws.NetworkMap) bool {
	return func(nm *controlws.NetworkMap) bool { _, ok := nm.PeerByName(name); return ok }
}
