package control

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"tsconnect/controlws"
)

func TestRegisterRefusals(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	u := e.user("alice@example.com")

	expired := e.authKey(AuthKeyOptions{User: u.ID, Expiry: time.Minute})
	e.clock.Advance(time.Minute + time.Second)
	used := e.authKey(AuthKeyOptions{User: u.ID})
	e.mustRegister(used, "first")
	revoked := e.authKey(AuthKeyOptions{User: u.ID, Reusable: true})
	keys, _ := e.s.AuthKeys(ctx)
	if err := e.s.RevokeAuthKey(ctx, keys[len(keys)-1].ID); err != nil {
		t.Fatal(err)
	}
	valid := e.authKey(AuthKeyOptions{User: u.ID})

	for _, tc := range []struct {
		name, key, code string
	}{
		{"unknown", "tskey-000000000000-00000000", controlws.CodeInvalidKey},
		{"wrong secret for a real prefix", valid[:len(valid)-4] + "beef", controlws.CodeInvalidKey},
		{"malformed", "hello", controlws.CodeInvalidKey},
		{"none", "", controlws.CodeInvalidKey},
		{"expired", expired, controlws.CodeExpiredKey},
		{"used", used, controlws.CodeUsedKey},
		{"revoked", revoked, controlws.CodeRevokedKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := e.newMachine()
			_, err := m.register(tc.key, "refused")
			wantCode(t, err, tc.code)
			var ce *controlws.Error
			errors.As(err, &ce)
			if ce.Message == "" {
				t.Error("error has no message")
			}
		})
	}
	if ns := e.nodes(); len(ns) != 1 || ns[0].Name != "first" {
		t.Fatalf("nodes after refusals: %+v, want only first", ns)
	}
	// The valid key was not consumed by the failed attempt that used its prefix.
	if _, err := e.newMachine().register(valid, "second"); err != nil {
		t.Fatalf("valid key after refusals: %v", err)
	}
}

func TestConcurrentSingleUseKey(t *testing.T) {
	e := newEnv(t, nil)
	u := e.user("bob@example.com")
	secret := e.authKey(AuthKeyOptions{User: u.ID})
	const n = 24
	ms := make([]*machine, n)
	for i := range ms {
		ms[i] = e.newMachine()
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range ms {
		wg.Go(func() { _, errs[i] = ms[i].register(secret, "racer") })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		wantCode(t, err, controlws.CodeUsedKey)
	}
	if ok != 1 {
		t.Fatalf("%d registrations succeeded with one single-use key, want 1", ok)
	}
	if ns := e.nodes(); len(ns) != 1 {
		t.Fatalf("%d nodes, want 1", len(ns))
	}
}

func TestNodeKeyOfAnotherMachine(t *testing.T) {
	e := newEnv(t, nil)
	u := e.user("carol@example.com")
	key := e.authKey(AuthKeyOptions{User: u.ID, Reusable: true})
	a, _ := e.mustRegister(key, "a")
	b := e.newMachine()
	b.nk = a.nk
	_, err := b.register(key, "b")
	wantCode(t, err, controlws.CodeNodeKeyInUse)
	if ns := e.nodes(); len(ns) != 1 {
		t.Fatalf("%d nodes, want 1", len(ns))
	}
}

func TestReregisterAndRotate(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	u := e.user("dave@example.com")
	secret := e.authKey(AuthKeyOptions{User: u.ID})
	m, n1 := e.mustRegister(secret, "laptop")
	if n1.User != u.ID || len(n1.Addresses) != 2 {
		t.Fatalf("registered node %+v", n1)
	}
	// Same machine, same node key, the used single-use key: idempotent.
	r, err := m.register(secret, "laptop")
	if err != nil {
		t.Fatalf("re-register: %v", err)
	}
	if r.Node.ID != n1.ID || r.User.LoginName != "dave@example.com" {
		t.Fatalf("re-register gave %+v, want node %d", r, n1.ID)
	}
	// Rotation: new node key, no auth key needed, same node.
	oldKey := m.nk.Public()
	m.nk = newKey()
	r, err = m.register("", "laptop")
	if err != nil {
		t.Fatalf("rotate: %v", err)
	}
	if r.Node.ID != n1.ID || r.Node.Name != n1.Name || r.Node.Addresses[0] != n1.Addresses[0] || r.Node.Key != m.nk.Public() {
		t.Fatalf("rotation gave %+v, want node %d with the new key", r.Node, n1.ID)
	}
	if e.s.verifyDERPClient(ctx, oldKey) == nil {
		t.Error("relay still admits the rotated-away node key")
	}
	if err := e.s.verifyDERPClient(ctx, m.nk.Public()); err != nil {
		t.Errorf("relay refuses the new node key: %v", err)
	}
	keys, _ := e.s.AuthKeys(ctx)
	if len(keys) != 1 || !keys[0].Used {
		t.Fatalf("keys: %+v", keys)
	}
	if ns := e.nodes(); len(ns) != 1 {
		t.Fatalf("%d nodes, want 1", len(ns))
	}
}

func TestTaggedAndEphemeralFromKey(t *testing.T) {
	e := newEnv(t, nil)
	u := e.user("erin@example.com")
	_, n := e.mustRegister(e.authKey(AuthKeyOptions{User: u.ID, Tags: []string{"tag:server"}}), "srv")
	if n.User != 0 || len(n.Tags) != 1 || n.Tags[0] != "tag:server" || n.Ephemeral {
		t.Fatalf("tagged node: %+v", n)
	}
	_, n = e.mustRegister(e.authKey(AuthKeyOptions{Tags: []string{"tag:ci"}, Ephemeral: true}), "ci")
	if n.User != 0 || !n.Ephemeral {
		t.Fatalf("ephemeral tagged node: %+v", n)
	}
	if _, _, err := e.s.CreateAuthKey(context.Background(), AuthKeyOptions{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("key without user or tags: %v", err)
	}
	if _, _, err := e.s.CreateAuthKey(context.Background(), AuthKeyOptions{Tags: []string{"server"}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("tag without tag: prefix: %v", err)
	}
}

func TestNames(t *testing.T) {
	for in, want := range map[string]string{
		"laptop":             "laptop",
		"My Laptop!":         "my-laptop",
		"web-01.example.com": "web-01",
		"--weird__name--":    "weird-name",
		"":                   "node",
		"Ünïcode":            "n-code",
		"a123456789012345678901234567890123456789012345678901234567890123456789": "a12345678901234567890123456789012345678901234567890123456789012",
	} {
		if got := sanitizeHostname(in); got != want {
			t.Errorf("sanitizeHostname(%q) = %q, want %q", in, got, want)
		}
	}
	e := newEnv(t, nil)
	u := e.user("frank@example.com")
	secret := e.authKey(AuthKeyOptions{User: u.ID, Reusable: true})
	var names []string
	for range 3 {
		_, n := e.mustRegister(secret, "Build Box")
		names = append(names, n.Name)
	}
	if names[0] != "build-box" || names[1] != "build-box-1" || names[2] != "build-box-2" {
		t.Fatalf("names %q", names)
	}
}

func TestAddresses(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	u := e.user("gina@example.com")
	secret := e.authKey(AuthKeyOptions{User: u.ID, Reusable: true})
	var ns []controlws.Node
	for range 3 {
		_, n := e.mustRegister(secret, "n")
		ns = append(ns, n)
	}
	for _, n := range ns {
		v4, v6 := n.Addresses[0], n.Addresses[1]
		if v4.Bits() != 32 || !cgnat.Contains(v4.Addr()) || v6.Bits() != 128 || !e.s.ula.Contains(v6.Addr()) {
			t.Fatalf("node %d addresses %v (ULA %v)", n.ID, n.Addresses, e.s.ula)
		}
		if e.s.ula.Addr().As16()[0] != 0xfd {
			t.Fatalf("ULA %v not in fd00::/8", e.s.ula)
		}
	}
	if err := e.s.DeleteNode(ctx, ns[1].ID); err != nil {
		t.Fatal(err)
	}
	_, n4 := e.mustRegister(secret, "n")
	for _, old := range ns {
		if n4.Addresses[0] == old.Addresses[0] || n4.Addresses[1] == old.Addresses[1] {
			t.Fatalf("new node got %v, an address of node %d", n4.Addresses, old.ID)
		}
	}
	if n4.Addresses[0].Addr() != ipv4At(4) {
		t.Fatalf("fourth node got %v, want the next address after the cursor %v", n4.Addresses[0], ipv4At(4))
	}
}

func TestAddressCursorWraps(t *testing.T) {
	e := newEnv(t, nil)
	u := e.user("hank@example.com")
	secret := e.authKey(AuthKeyOptions{User: u.ID, Reusable: true})
	_, first := e.mustRegister(secret, "first") // takes offset 1
	// Move the cursor to the end of the range: the next allocations wrap, skipping offset 1.
	err := e.s.st.Update(context.Background(), func(tx storeTx) error {
		return tx.SetSetting(settingIPv4Cursor, "4194301")
	})
	if err != nil {
		t.Fatal(err)
	}
	e.s.writeMu.Lock()
	e.s.addrs4 = addrBlock{} // the rest of its block is dropped: the next registration reserves anew
	e.s.writeMu.Unlock()
	_, a := e.mustRegister(secret, "a")
	_, b := e.mustRegister(secret, "b")
	if a.Addresses[0].Addr().String() != "100.127.255.254" {
		t.Fatalf("before wrap: %v", a.Addresses[0])
	}
	if b.Addresses[0].Addr() == first.Addresses[0].Addr() || b.Addresses[0].Addr().String() != "100.64.0.2" {
		t.Fatalf("after wrap: %v (first node has %v)", b.Addresses[0], first.Addresses[0])
	}
}
