package control

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"tsconnect/controlws"
)

// TestOversizedHostinfoIsRefusedAndOldStateKept: a node sending host info past a cap (the
// 2 MiB OS string that once pushed every peer's map over the frame limit, and each other
// field) at register, map request or update gets a bad_request error naming the field and
// the limit; nothing is stored, and the node's earlier host info stays in force.
func TestOversizedHostinfoIsRefusedAndOldStateKept(t *testing.T) {
	e := newEnv(t, nil)
	u := e.user("mallory@example.com")
	k := e.authKey(AuthKeyOptions{User: u.ID, Reusable: true})
	r := e.rawConn()
	nk := newKey().Public()
	// 2 MiB of '<' is 12 MiB on the wire (\u003c), and was as much in every peer's map.
	huge := controlws.Hostinfo{Hostname: "web", OS: strings.Repeat("<", 2<<20)}
	r.send(controlws.TypeRegister, 1, controlws.RegisterRequest{AuthKey: k, NodeKey: nk, Hostinfo: huge})
	r.wantError(1, controlws.CodeBadRequest, "register", "os is 2097152 bytes, over the limit of 64")
	if ns := e.nodes(); len(ns) != 0 {
		t.Fatalf("a refused register made nodes: %+v", ns)
	}
	r.send(controlws.TypeRegister, 2, controlws.RegisterRequest{AuthKey: k, NodeKey: nk, Interactive: true,
		Hostinfo: controlws.Hostinfo{Hostname: strings.Repeat("h", 16<<20-400)}})
	r.wantError(2, controlws.CodeBadRequest, "register", "hostname is", "over the limit of 256")

	good := controlws.Hostinfo{Hostname: "web.corp.example", OS: "linux", SSH: true, SSHHostKeys: []string{testHostKey(t)}}
	r.send(controlws.TypeRegister, 3, controlws.RegisterRequest{AuthKey: k, NodeKey: nk, Hostinfo: good})
	r.want(3, controlws.TypeRegisterResponse)

	fiveKeys := good
	fiveKeys.SSHHostKeys = []string{testHostKey(t), testHostKey(t), testHostKey(t), testHostKey(t), testHostKey(t)}
	r.send(controlws.TypeMapRequest, 4, controlws.MapRequest{NodeKey: nk, Hostinfo: fiveKeys})
	r.wantError(4, controlws.CodeBadRequest, "mapRequest", "5 sshHostKeys, over the limit of 4")

	var eps []netip.AddrPort
	for i := range controlws.MaxEndpoints + 1 {
		eps = append(eps, netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), uint16(1000+i)))
	}
	for i, bad := range []controlws.Hostinfo{
		{Hostname: "web", Endpoints: eps},
		{Hostname: "web\x1b]0;owned\x07"},
		{Hostname: "web", HomeDERP: -7},
		{Hostname: "web", SSHHostKeys: []string{"ssh-ed25519 AAAA"}},
	} {
		r.send(controlws.TypeUpdate, uint64(10+i), controlws.Update{Hostinfo: bad})
		r.wantError(uint64(10+i), controlws.CodeBadRequest, "update: hostinfo:")
	}
	ns := e.nodes()
	if len(ns) != 1 || ns[0].Hostname != good.Hostname || ns[0].OS != "linux" || len(ns[0].SSHHostKeys) != 1 || len(ns[0].Endpoints) != 0 {
		t.Fatalf("after refused updates: %+v; want the registered host info", ns)
	}
	if ns[0].Name != "web" {
		t.Fatalf("node name %q, want the DNS label web", ns[0].Name)
	}
	// The connection still serves: a valid map request gets its full map.
	r.send(controlws.TypeMapRequest, 20, controlws.MapRequest{NodeKey: nk, Hostinfo: good})
	r.want(20, controlws.TypeMapResponse)
}

// hostinfoAtCaps is host info with every field at its limit, in the characters JSON
// inflates most.
func hostinfoAtCaps(t testing.TB) controlws.Hostinfo {
	rk, err := rsa.GenerateKey(rand.Reader, 4096)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := ssh.NewPublicKey(&rk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	h := controlws.Hostinfo{
		Hostname: strings.Repeat("<", controlws.MaxHostnameLen), OS: strings.Repeat("<", controlws.MaxOSLen), SSH: true,
		SSHHostKeys: []string{strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))), testHostKey(t), testHostKey(t), testHostKey(t)},
		HomeDERP:    controlws.MaxHomeDERP,
	}
	for i := range controlws.MaxEndpoints {
		h.Endpoints = append(h.Endpoints, netip.MustParseAddrPort(fmt.Sprintf("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff%02x]:65535", i)))
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestHostileNodeAtCapsDoesNotStallPeers: a node at every cap, updating as fast as it can,
// cannot make anyone's map unsendable: 100 peers all get maps with it, and a policy write
// that removes its access reaches the agent and every peer at once (within 1 s; 5 s under
// the race detector).
func TestHostileNodeAtCapsDoesNotStallPeers(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	alice, mallory := e.user("alice@example.com"), e.user("mallory@example.com")
	ka := e.authKey(AuthKeyOptions{User: alice.ID, Reusable: true})
	km := e.authKey(AuthKeyOptions{User: mallory.ID})
	const peers = 100
	var (
		ms []*machine
		ws []*watcher
	)
	agent, agentNode := e.mustRegister(ka, "agent")
	for i := range peers {
		m, _ := e.mustRegister(ka, fmt.Sprintf("peer-%d", i))
		ms = append(ms, m)
	}
	for _, m := range ms {
		ws = append(ws, m.watch(t))
	}
	wAgent := agent.watch(t)

	hostile := hostinfoAtCaps(t)
	atk := e.newMachine()
	r, err := atk.c.Register(ctx, controlws.RegisterRequest{AuthKey: km, NodeKey: atk.nk.Public(), Hostinfo: hostile})
	if err != nil {
		t.Fatal(err)
	}
	atkID := r.Node.ID
	atk.watch(t)
	// It floods updates at the caps, alternating so each is a real change.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			h := hostile
			h.OS = strings.Repeat("<", controlws.MaxOSLen-i%2)
			var ce *controlws.Error
			if err := atk.c.Update(ctx, h); err != nil && (!errors.As(err, &ce) || ce.Code != controlws.CodeTooMany) {
				return
			}
		}
	}()
	seesAttacker := func(nm *controlws.NetworkMap) bool {
		p, ok := peer(nm, atkID)
		return ok && p.Hostname == hostile.Hostname && len(p.SSHHostKeys) == controlws.MaxSSHHostKeys
	}
	for i, w := range append(ws, wAgent) {
		w.waitFor(t, fmt.Sprintf("watcher %d sees the attacker at the caps", i), seesAttacker)
	}

	// Revoke: only alice's devices may reach each other.
	start := time.Now()
	if _, err := e.s.SetPolicy(ctx, []byte(`{"acls": [{"action": "accept", "src": ["alice@example.com"], "dst": ["alice@example.com:*"]}]}`), "test"); err != nil {
		t.Fatal(err)
	}
	gone := func(nm *controlws.NetworkMap) bool { return !hasPeer(nm, atkID) && len(nm.Peers) == peers }
	wAgent.waitFor(t, "the agent's map without the attacker", gone)
	agentAt := time.Since(start)
	for i, w := range ws {
		w.waitFor(t, fmt.Sprintf("peer %d's map without the attacker", i), gone)
	}
	allAt := time.Since(start)
	close(stop)
	wg.Wait()
	t.Logf("revocation with a node at the caps flooding updates: agent %v, all %d peers %v", agentAt, peers, allAt)
	if bound := raceSlowdown * time.Second; agentAt > bound || allAt > bound {
		t.Fatalf("revocation took %v at the agent %d and %v at all peers; want under %v", agentAt, agentNode.ID, allAt, bound)
	}
}

// TestHostinfoUpdateFloodIsRefusedPastTheRate: a node sending host-info updates in a loop
// (each one goes to every peer) is refused with too_many past UpdateBurst, keeping its last
// accepted host info, while another node's update still goes through.
func TestHostinfoUpdateFloodIsRefusedPastTheRate(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	u := e.user("alice@example.com")
	k := e.authKey(AuthKeyOptions{User: u.ID, Reusable: true})
	flooder, fn := e.mustRegister(k, "flooder")
	other, on := e.mustRegister(k, "other")
	accepted, refused, last := 0, 0, -1
	for i := range UpdateBurst + 10 {
		err := flooder.c.Update(ctx, controlws.Hostinfo{Hostname: fmt.Sprintf("flood-%d", i)})
		var ce *controlws.Error
		switch {
		case err == nil:
			accepted, last = accepted+1, i
		case errors.As(err, &ce) && ce.Code == controlws.CodeTooMany && strings.Contains(ce.Message, "20 host-info updates at once"):
			refused++
		default:
			t.Fatalf("update %d: %v", i, err)
		}
	}
	if accepted < UpdateBurst || accepted > UpdateBurst+2 || refused == 0 {
		t.Fatalf("%d updates accepted, %d refused; want %d accepted (a token or two more at most), the rest refused", accepted, refused, UpdateBurst)
	}
	if err := other.c.Update(ctx, controlws.Hostinfo{Hostname: "other-2"}); err != nil {
		t.Fatalf("another node's update: %v", err)
	}
	for _, n := range e.nodes() {
		switch {
		case n.ID == fn.ID && n.Hostname != fmt.Sprintf("flood-%d", last):
			t.Errorf("flooder's host info %q, want its last accepted update flood-%d", n.Hostname, last)
		case n.ID == on.ID && n.Hostname != "other-2":
			t.Errorf("other's host info %q, want other-2", n.Hostname)
		}
	}
}
