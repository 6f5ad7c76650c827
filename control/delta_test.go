package control

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"tsconnect/controlws"
	"tsconnect/key"
)

// TestChangesTravelAsDeltas: a version 3 node that holds its map hears of a join, a
// deletion and a policy edit concerning it as deltas (no full map), and of a policy edit
// that changes nothing for it not at all.
func TestChangesTravelAsDeltas(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	u := e.user("ada@example.com")
	secret := e.authKey(AuthKeyOptions{User: u.ID, Reusable: true})
	setPolicy := func(text string) {
		t.Helper()
		if _, err := e.s.SetPolicy(ctx, []byte(text), "test"); err != nil {
			t.Fatal(err)
		}
	}
	const everyone = `{"tagOwners": {"tag:web": ["ada@example.com"]}, "acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}`
	setPolicy(everyone + `]}`)
	_, nb := e.mustRegister(secret, "b")

	r := e.rawConn()
	nk := key.NewPrivate().Public()
	r.send(controlws.TypeRegister, 1, controlws.RegisterRequest{AuthKey: secret, NodeKey: nk, Hostinfo: controlws.Hostinfo{Hostname: "a"}})
	r.want(1, controlws.TypeRegisterResponse)
	r.send(controlws.TypeMapRequest, 2, controlws.MapRequest{NodeKey: nk, Hostinfo: controlws.Hostinfo{Hostname: "a"}})
	var first controlws.MapResponse
	if err := r.want(2, controlws.TypeMapResponse).DecodeBody(&first); err != nil || first.Full == nil || len(first.Full.Peers) != 1 {
		t.Fatalf("first message %+v (%v), want a full map with b", first, err)
	}
	delta := func(what string) controlws.MapResponse {
		t.Helper()
		env := r.want(2, controlws.TypeMapResponse)
		var m controlws.MapResponse
		if err := env.DecodeBody(&m); err != nil {
			t.Fatal(err)
		}
		if m.Full != nil {
			t.Fatalf("%s: a full map of %d bytes, want a delta", what, len(env.Body))
		}
		return m
	}

	_, nc := e.mustRegister(secret, "c")
	if m := delta("c joins"); len(m.PeersChanged) != 1 || m.PeersChanged[0].ID != nc.ID || m.Rules != nil {
		t.Fatalf("c joins: %+v, want c alone in peersChanged", m)
	}
	if err := e.s.DeleteNode(ctx, nb.ID); err != nil {
		t.Fatal(err)
	}
	if m := delta("b deleted"); !slices.Equal(m.PeersRemoved, []int64{nb.ID}) || len(m.PeersChanged) != 0 {
		t.Fatalf("b deleted: %+v, want b in peersRemoved alone", m)
	}

	// A rule for tag:web, which nobody carries, changes nothing for a: it hears nothing, and
	// the next thing it hears is the next change that concerns it.
	setPolicy(everyone + `, {"action": "accept", "src": ["*"], "dst": ["tag:web:80"]}]}`)
	select {
	case env := <-r.envs:
		t.Fatalf("a policy edit that changes nothing for a sent it %s %.200s", env.Type, env.Body)
	case <-time.After(300 * time.Millisecond):
	}
	setPolicy(everyone + `, {"action": "accept", "src": ["*"], "dst": ["*:8080"]}]}`)
	m := delta("a's rules change")
	if m.Rules == nil || m.Rules.PacketFilter == nil || len(*m.Rules.PacketFilter) != 2 || len(m.PeersChanged)+len(m.PeersRemoved) != 0 {
		t.Fatalf("a's rules change: %+v, want its two filter rules and no peer change", m)
	}
	nm := *first.Full
	nm.Apply(&m)
	if got, _ := json.Marshal(nm.PacketFilter); !bytes.Contains(got, []byte("8080")) {
		t.Fatalf("the map after the delta has filter %s, without the new rule", got)
	}

	// After edits that changed only ports (no node rechecks its peers), one that changes who
	// may talk with whom still reaches a as peer changes: c gone, then back.
	setPolicy(`{"tagOwners": {"tag:web": ["ada@example.com"]}, "acls": [{"action": "accept", "src": ["tag:web"], "dst": ["tag:web:*"]}]}`)
	if m := delta("nobody reaches a"); !slices.Equal(m.PeersRemoved, []int64{nc.ID}) {
		t.Fatalf("nobody reaches a: %+v, want c in peersRemoved", m)
	}
	setPolicy(everyone + `]}`)
	if m := delta("everyone again"); len(m.PeersChanged) != 1 || m.PeersChanged[0].ID != nc.ID {
		t.Fatalf("everyone again: %+v, want c back in peersChanged", m)
	}
}

// TestOldClientsGetRulesInFullMaps: a stream of a client before version 3, which cannot
// apply MapResponse.Rules, gets a full map when its rules change; a version 3 one a delta.
func TestOldClientsGetRulesInFullMaps(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	u := e.user("ada@example.com")
	secret := e.authKey(AuthKeyOptions{User: u.ID, Reusable: true})
	_, na := e.mustRegister(secret, "a")
	e.mustRegister(secret, "b")
	take := func(st *stream) []byte {
		body, held := st.take()
		if held {
			<-e.s.fullMaps
		}
		return body
	}
	old, v3 := newStream(e.s, na.ID, 1, nil), newStream(e.s, na.ID, 1, nil)
	v3.rulesDelta = true
	for _, st := range []*stream{old, v3} {
		if b := take(st); !bytes.HasPrefix(b, []byte(`{"full":`)) {
			t.Fatalf("first message %.200s, want a full map", b)
		}
	}
	if _, err := e.s.SetPolicy(ctx, []byte(`{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:22"]}]}`), "test"); err != nil {
		t.Fatal(err)
	}
	if b := take(old); !bytes.HasPrefix(b, []byte(`{"full":`)) || !bytes.Contains(b, []byte(`"packetFilter"`)) {
		t.Fatalf("old client after a rules change: %.300s, want a full map with its filter", b)
	}
	b := take(v3)
	var m controlws.MapResponse
	if err := json.Unmarshal(b, &m); err != nil || m.Full != nil || m.Rules == nil || len(*m.Rules.PacketFilter) != 1 {
		t.Fatalf("version 3 client after a rules change: %.300s (%v), want a rules delta", b, err)
	}
}
