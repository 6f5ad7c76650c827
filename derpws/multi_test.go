//go:build !js

package derpws

import (
	"context"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"tsconnect/internal/eventually"
	"tsconnect/internal/leakcheck"
	"tsconnect/key"
)

// mapOf returns a DERP map with one region per relay, region IDs from 1.
func mapOf(t *testing.T, relays ...*relay) *Map {
	m := &Map{Regions: map[int]*Region{}}
	for i, r := range relays {
		u, err := url.Parse(r.url)
		if err != nil {
			t.Fatal(err)
		}
		port, _ := strconv.Atoi(u.Port())
		id := i + 1
		m.Regions[id] = &Region{RegionID: id, RegionCode: "r" + strconv.Itoa(id), Nodes: []*Node{{
			Name: strconv.Itoa(id) + "a", RegionID: id, HostName: u.Hostname(), DERPPort: port, STUNPort: -1, InsecureForTests: true,
		}}}
	}
	return m
}

func preferredOn(r *relay, k key.Public) bool {
	c := r.lookup(k)
	return c != nil && c.preferred.Load()
}

// TestMulti: a client homed in region 1 reaches a peer homed in region 2 through region 2's
// relay, tells only its home relay it is home, moves home, and closes an idle region.
func TestMulti(t *testing.T) {
	leakcheck.Check(t)
	r1, r2 := newRelay(t, nil), newRelay(t, nil)
	dm := mapOf(t, r1, r2)
	m := NewMulti(key.NewPrivate(), dm, 1, &MultiOptions{Logf: t.Logf, IdleTimeout: 300 * time.Millisecond})
	defer m.Close()
	mk := m.PublicKey()
	m.Start()
	peer, _ := newClient(t, r2.url, false)
	peer.ensureStarted()
	eventually.True(t, "m home on relay 1", func() bool { return preferredOn(r1, mk) })
	eventually.True(t, "peer on relay 2", func() bool { return r2.lookup(peer.PublicKey()) != nil })

	m.SetPeerRegions(map[key.Public]int{peer.PublicKey(): 2})
	m.Send(peer.PublicKey(), []byte("to region 2"))
	if src, got := recv(t, peer); src != mk || string(got) != "to region 2" {
		t.Fatalf("peer got %q from %s", got, src.ShortString())
	}
	if r2.lookup(mk) == nil || preferredOn(r2, mk) {
		t.Fatal("m should be on relay 2, not as its home")
	}
	peer.Send(mk, []byte("back"))
	if src, got, err := m.Recv(); err != nil || src != peer.PublicKey() || string(got) != "back" {
		t.Fatalf("m got %q from %s: %v", got, src.ShortString(), err)
	}
	if s := r1.Stats(peer.PublicKey()); s.PacketsIn+s.PacketsOut != 0 {
		t.Errorf("home relay carried the peer's traffic: %+v", s)
	}
	// Nothing more flows to region 2: its connection is closed; home stays.
	eventually.True(t, "region 2 closed when idle", func() bool { return slices.Equal(m.Regions(), []int{1}) })
	eventually.True(t, "relay 2 sees m leave", func() bool { return r2.lookup(mk) == nil })

	// A peer with no known region is reached through home.
	local, _ := newClient(t, r1.url, true)
	local.ensureStarted()
	eventually.True(t, "local on relay 1", func() bool { return r1.lookup(local.PublicKey()) != nil })
	m.Send(local.PublicKey(), []byte("via home"))
	if _, got := recv(t, local); string(got) != "via home" {
		t.Fatalf("local got %q", got)
	}

	m.SetHome(2)
	eventually.True(t, "relay 2 is home", func() bool { return preferredOn(r2, mk) })
	eventually.True(t, "relay 1 no longer home", func() bool { return r1.lookup(mk) == nil || !preferredOn(r1, mk) })
	if m.Home() != 2 {
		t.Fatalf("home %d", m.Home())
	}
}

// TestProbeAndPickHome: regions that answer /derp/probe are measured, a dead one is left
// out, and the home is the fastest region (the lowest ID without measurements).
func TestProbeAndPickHome(t *testing.T) {
	leakcheck.Check(t)
	r1, r2 := newRelay(t, nil), newRelay(t, nil)
	dm := mapOf(t, r1, r2)
	dm.Regions[3] = &Region{RegionID: 3, Nodes: []*Node{{Name: "3a", RegionID: 3, HostName: "127.0.0.1", DERPPort: 1, InsecureForTests: true}}}
	lat := ProbeRegions(context.Background(), dm, nil)
	if _, ok := lat[3]; ok || len(lat) != 2 {
		t.Fatalf("latencies %v, want regions 1 and 2 only", lat)
	}
	if h := PickHome(dm, lat); h != 1 && h != 2 {
		t.Fatalf("home %d", h)
	}
	if h := PickHome(dm, map[int]time.Duration{1: 5 * time.Millisecond, 2: time.Millisecond}); h != 2 {
		t.Errorf("home %d, want the faster region 2", h)
	}
	if h := PickHome(dm, nil); h != 1 {
		t.Errorf("home without measurements %d, want the lowest ID 1", h)
	}
	var urls []string
	ProbeRegions(context.Background(), &Map{Regions: map[int]*Region{1: dm.Regions[1]}}, func(_ context.Context, u string) ([]byte, error) {
		urls = append(urls, u)
		return nil, nil
	})
	if len(urls) != probeTries || urls[0] != r1.url+"/probe" {
		t.Errorf("probed %q, want %d GETs of %s/probe", urls, probeTries, r1.url)
	}
}

// TestMultiHomeMovesWithItsURL: a map that names another relay for the home region (a node
// moved to another control replica, whose map names its own relay region 1) moves the home
// connection there at once: the old relay sees the client leave, the new one has it as home,
// and a peer there reaches it.
func TestMultiHomeMovesWithItsURL(t *testing.T) {
	leakcheck.Check(t)
	ra, rb := newRelay(t, nil), newRelay(t, nil)
	m := NewMulti(key.NewPrivate(), mapOf(t, ra), 1, &MultiOptions{Logf: t.Logf})
	defer m.Close()
	mk := m.PublicKey()
	m.Start()
	eventually.True(t, "m home on relay A", func() bool { return preferredOn(ra, mk) })

	m.SetMap(mapOf(t, rb)) // region 1 is relay B now
	eventually.True(t, "m home on relay B", func() bool { return preferredOn(rb, mk) && m.HomeUp() })
	eventually.True(t, "relay A sees m leave", func() bool { return ra.lookup(mk) == nil })
	peer, _ := newClient(t, rb.url, true)
	peer.ensureStarted()
	eventually.True(t, "peer on relay B", func() bool { return rb.lookup(peer.PublicKey()) != nil })
	peer.Send(mk, []byte("on B"))
	if src, got, err := m.Recv(); err != nil || src != peer.PublicKey() || string(got) != "on B" {
		t.Fatalf("m got %q from %s: %v", got, src.ShortString(), err)
	}
	if !slices.Equal(m.Regions(), []int{1}) {
		t.Fatalf("regions %v; want [1]", m.Regions())
	}
}
