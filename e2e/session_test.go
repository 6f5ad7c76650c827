package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"tsconnect/control"
	"tsconnect/controlws"
	"tsconnect/internal/eventually"
	"tsconnect/node"
)

// TestNativeNodeToAgent: a client node reaches the agent's shell through the relay.
func TestNativeNodeToAgent(t *testing.T) {
	tn := newTestNet(t)
	a := tn.startAgent("server")
	client := tn.startNode("laptop")
	cl := sshDial(t, client, "server")

	if _, code := run(t, cl, "exit 42", nil); code != 42 {
		t.Fatalf("exit 42 returned %d", code)
	}
	payload := make([]byte, 1<<20)
	rand.Read(payload)
	out, code := run(t, cl, "cat", bytes.NewReader(payload))
	if code != 0 || !bytes.Equal(out, payload) {
		t.Fatalf("cat of 1 MiB: exit %d, %d bytes back, equal=%v", code, len(out), bytes.Equal(out, payload))
	}
	out, _ = run(t, cl, "echo $SSH_CONNECTION", nil)
	self := client.NetMap().Self.Addresses[0].Addr().String()
	if !strings.HasPrefix(string(out), self+" ") {
		t.Fatalf("SSH_CONNECTION = %q, want it to start with the client's overlay address %s", out, self)
	}
	// The relay's own per-key counters prove the bytes went through it.
	in := tn.srv.RelayStats(client.NodeKey())
	back := tn.srv.RelayStats(a.Node().NodeKey())
	if in.BytesIn < 1<<20 || back.BytesIn < 1<<20 {
		t.Fatalf("relay counters: client sent %d bytes, agent sent %d bytes through it; want ≥ 1 MiB each", in.BytesIn, back.BytesIn)
	}
}

// TestBadKeys: wrong, expired and used keys are refused with their code and register nothing.
func TestBadKeys(t *testing.T) {
	tn := newTestNet(t)
	used := tn.authKey(control.AuthKeyOptions{})
	tn.startNodeKey("first", used) // consumes it
	expired := tn.authKey(control.AuthKeyOptions{Expiry: time.Minute})
	tn.clock.Advance(time.Minute + time.Second)
	before := tn.nodeCount()
	for _, tc := range []struct{ name, key, code string }{
		{"wrong", "tskey-nope-0123456789abcdef", controlws.CodeInvalidKey},
		{"expired", expired, controlws.CodeExpiredKey},
		{"used", used, controlws.CodeUsedKey},
	} {
		n, err := node.New(node.Options{ControlURL: tn.url, AuthKey: tc.key, Hostname: "x"})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = n.Start(ctx)
		cancel()
		n.Close()
		var ce *controlws.Error
		if !errors.As(err, &ce) || ce.Code != tc.code {
			t.Errorf("%s key: err = %v, want code %s", tc.name, err, tc.code)
		}
	}
	if after := tn.nodeCount(); after != before {
		t.Fatalf("refused keys registered nodes: %d before, %d after", before, after)
	}
}

// TestSingleUseKeyRace: two concurrent registrations with one single-use key make one node.
func TestSingleUseKeyRace(t *testing.T) {
	tn := newTestNet(t)
	k := tn.authKey(control.AuthKeyOptions{})
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := node.New(node.Options{ControlURL: tn.url, AuthKey: k, Hostname: "racer"})
			if err != nil {
				errs[i] = err
				return
			}
			defer n.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			errs[i] = n.Start(ctx)
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		}
	}
	if ok != 1 || tn.nodeCount() != 1 {
		t.Fatalf("one single-use key, two racers: %d succeeded (%v), %d nodes; want exactly 1", ok, errs, tn.nodeCount())
	}
}

// TestControlRestartKeepsSession: control (and its relay) go away and come back; the
// live SSH session continues and nodes and keys are still registered.
func TestControlRestartKeepsSession(t *testing.T) {
	tn := newTestNet(t)
	tn.startAgent("server")
	client := tn.startNode("laptop")
	cl := sshDial(t, client, "server")
	if out, _ := run(t, cl, "echo before", nil); string(out) != "before\n" {
		t.Fatalf("before restart: %q", out)
	}
	nodes := tn.nodeCount()
	tn.restart()
	if got := tn.nodeCount(); got != nodes {
		t.Fatalf("after restart %d nodes, want %d", got, nodes)
	}
	// The same SSH connection carries a new command once the relay is back.
	if out, code := run(t, cl, "echo after", nil); string(out) != "after\n" || code != 0 {
		t.Fatalf("after restart: %q exit %d", out, code)
	}
}

// TestDeletedNodeLosesSession: an admin deletes the client; its live session ends and it
// cannot come back.
func TestDeletedNodeLosesSession(t *testing.T) {
	tn := newTestNet(t)
	tn.startAgent("server")
	client := tn.startNode("laptop")
	cl := sshDial(t, client, "server")
	s, err := cl.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("sleep 600"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	if err := tn.srv.DeleteNode(context.Background(), client.NetMap().Self.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the deleted node's session is still alive 20 s later")
	}
	eventually.True(t, "the deleted node to stop", func() bool { return client.State() == node.StateStopped })
}

func (tn *testNet) nodeCount() int {
	tn.t.Helper()
	nodes, err := tn.srv.Nodes(context.Background())
	if err != nil {
		tn.t.Fatal(err)
	}
	return len(nodes)
}
