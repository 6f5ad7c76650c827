//go:build !js

package node

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"tsconnect/control"
	"tsconnect/key"
)

// TestStartFromSavedControlURLs: a node whose given control URL is down starts through a
// replica URL its state file keeps under that given URL, dialled with the saved server key
// pinned; a saved key that is not the server's stops it (a state file cannot send it to
// another server), as do saved URLs kept under another given URL, and a state file
// listing a URL a node would refuse is refused.
func TestStartFromSavedControlURLs(t *testing.T) {
	tc := startControl(t)
	dir := t.TempDir()
	n := newNode(t, tc, "n1", Options{AuthKey: tc.authKey(control.AuthKeyOptions{}), StateDir: dir})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	n.Close()

	const dead = "http://127.0.0.1:9" // nothing listens on the discard port
	saved := func(c *controlState) {
		t.Helper()
		id, err := loadIdentity(dir)
		if err != nil {
			t.Fatal(err)
		}
		id.Control = c
		if err := id.save(dir); err != nil {
			t.Fatal(err)
		}
	}
	start := func(given string) (*Node, error) {
		t.Helper()
		n, err := New(Options{ControlURL: given, Hostname: "n1", StateDir: dir, Logf: func(f string, a ...any) { t.Logf("n1: "+f, a...) }})
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { n.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return n, n.Start(ctx)
	}

	saved(&controlState{For: dead, Key: tc.Control.PublicKey(), URLs: []string{tc.URL}})
	n2, err := start(dead)
	if err != nil {
		t.Fatalf("start with the given URL down and a live replica saved: %v", err)
	}
	if got := n2.ControlURL(); got != tc.URL {
		t.Fatalf("the node streams from %q; want the saved replica %s", got, tc.URL)
	}
	n2.Close()

	saved(&controlState{For: dead, Key: key.NewPrivate().Public(), URLs: []string{tc.URL}})
	if _, err := start(dead); !errors.Is(err, ErrControlUnreachable) {
		t.Fatalf("start through a replica that does not hold the saved key: %v; want ErrControlUnreachable", err)
	}
	saved(&controlState{For: "http://127.0.0.1:10", Key: tc.Control.PublicKey(), URLs: []string{tc.URL}})
	if _, err := start(dead); !errors.Is(err, ErrControlUnreachable) {
		t.Fatalf("start with replicas saved under another given URL: %v; want ErrControlUnreachable", err)
	}

	b, err := os.ReadFile(filepath.Join(dir, identityFile))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	json.Unmarshal(b, &raw)
	raw["control"] = map[string]any{"for": dead, "key": tc.Control.PublicKey().String(), "urls": []string{"https://user:pw@evil.example.com"}}
	b, _ = json.Marshal(raw)
	os.WriteFile(filepath.Join(dir, identityFile), b, 0o600)
	if _, err := New(Options{ControlURL: dead, StateDir: dir}); err == nil || !strings.Contains(err.Error(), "user, query or fragment") {
		t.Fatalf("New with a state file listing a URL with a password: %v; want it refused", err)
	}
}

// TestControlRingSpreads: every node's ring starts with its given URL and holds each listed
// replica once; where the listed ones start depends on the node, so the nodes of a replica
// that died do not all dial the same survivor first.
func TestControlRingSpreads(t *testing.T) {
	const given = "https://control.example.com"
	listed := []string{"https://a.example.com", "https://b.example.com", given, "https://c.example.com"}
	seconds := map[string]bool{}
	for seed := range uint32(4) {
		n := &Node{opts: Options{ControlURL: given}, ringSeed: seed,
			id: &identity{Control: &controlState{For: given, Key: key.NewPrivate().Public(), URLs: listed}}}
		ring := n.ringLocked()
		if len(ring) != 4 || ring[0] != given {
			t.Fatalf("seed %d: ring %v; want the given URL first, then a, b and c once each", seed, ring)
		}
		for _, u := range listed {
			if !slices.Contains(ring, u) {
				t.Fatalf("seed %d: ring %v lacks %s", seed, ring, u)
			}
		}
		seconds[ring[1]] = true
	}
	if len(seconds) != 3 {
		t.Fatalf("the rings of 4 nodes go second to %v; want each of a, b and c", seconds)
	}
	// Replicas listed under another given URL, or without the key, are not dialled.
	n := &Node{opts: Options{ControlURL: given}, id: &identity{Control: &controlState{For: "https://other.example.com", Key: key.NewPrivate().Public(), URLs: listed}}}
	if ring := n.ringLocked(); !slices.Equal(ring, []string{given}) {
		t.Fatalf("ring with replicas saved under another URL: %v", ring)
	}
	n.id.Control = &controlState{For: given, URLs: listed}
	if ring := n.ringLocked(); !slices.Equal(ring, []string{given}) {
		t.Fatalf("ring with replicas saved without a server key: %v", ring)
	}
}
