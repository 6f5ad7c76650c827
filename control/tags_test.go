package control

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"tsconnect/controlws"
)

// ownDevicesPolicy lets users SSH to their own devices only; alice owns tag:prod.
const ownDevicesPolicy = `{
	"tagOwners": {"tag:prod": ["alice@example.com"]},
	"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
	"ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["root"]}],
}`

func nodeByID(t *testing.T, e *env, id int64) controlws.Node {
	t.Helper()
	for _, n := range e.nodes() {
		if n.ID == id {
			return n
		}
	}
	t.Fatalf("node %d not listed", id)
	return controlws.Node{}
}

func TestSetNodeTags(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	alice, bob := e.user("alice@example.com"), e.user("bob@example.com")
	if _, err := e.s.SetPolicy(ctx, []byte(ownDevicesPolicy), "test"); err != nil {
		t.Fatal(err)
	}
	boxM, box := e.mustRegister(e.authKey(AuthKeyOptions{User: alice.ID}), "box")
	_, laptop := e.mustRegister(e.authKey(AuthKeyOptions{User: alice.ID}), "laptop")
	w := boxM.watch(t)
	w.waitFor(t, "box lets alice's laptop in by SSH", func(nm *controlws.NetworkMap) bool {
		return len(nm.SSHRules) == 1 && hasPeer(nm, laptop.ID)
	})

	// Refusals, each naming the problem; the node stays as it was.
	for _, c := range []struct {
		what string
		id   int64
		tags []string
		o    TagNodeOptions
		is   error
		want string
	}{
		{"bob does not own tag:prod", box.ID, []string{"tag:prod"}, TagNodeOptions{By: bob.ID}, ErrInvalid, "user bob@example.com may not apply tag:prod"},
		{"malformed tag", box.ID, []string{"prod"}, TagNodeOptions{}, ErrInvalid, `tag "prod"`},
		{"owner with tags", box.ID, []string{"tag:prod"}, TagNodeOptions{User: alice.ID}, ErrInvalid, "a tagged node has no owner user"},
		{"no such node", 9999, []string{"tag:prod"}, TagNodeOptions{}, ErrNotFound, "no node 9999"},
		{"no such applying user", box.ID, []string{"tag:prod"}, TagNodeOptions{By: 9999}, ErrNotFound, "no user 9999"},
	} {
		_, err := e.s.SetNodeTags(ctx, c.id, c.tags, c.o)
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want %v containing %q", c.what, err, c.is, c.want)
		}
	}
	if n := nodeByID(t, e, box.ID); n.User != alice.ID || len(n.Tags) != 0 {
		t.Fatalf("after refused changes: user %d tags %v; want alice's, untagged", n.User, n.Tags)
	}

	// Alice owns tag:prod: the node becomes tagged and ownerless, and its map loses the
	// rule for alice's own devices at once.
	n, err := e.s.SetNodeTags(ctx, box.ID, []string{"tag:prod", "tag:prod"}, TagNodeOptions{By: alice.ID})
	if err != nil || n.User != 0 || !slices.Equal(n.Tags, []string{"tag:prod"}) {
		t.Fatalf("alice tags box: %+v %v; want tag:prod and no owner", n, err)
	}
	w.waitFor(t, "box tagged, its SSH rules gone", func(nm *controlws.NetworkMap) bool {
		return len(nm.SSHRules) == 0 && slices.Equal(nm.Self.Tags, []string{"tag:prod"}) && nm.Self.User == 0
	})

	// Untagging needs a new owner: a tagged node has none to fall back to.
	_, err = e.s.SetNodeTags(ctx, box.ID, nil, TagNodeOptions{})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "untagging it needs a new owner") {
		t.Fatalf("untag without an owner: %v", err)
	}
	// Bob may not take tag:prod away (he does not own it), even giving the node to himself.
	if _, err = e.s.SetNodeTags(ctx, box.ID, nil, TagNodeOptions{By: bob.ID, User: bob.ID}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bob untags tag:prod: %v; want refused", err)
	}
	// Alice owns the tag but may not hand the node to bob (she is no admin).
	if _, err = e.s.SetNodeTags(ctx, box.ID, nil, TagNodeOptions{By: alice.ID, User: bob.ID}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "another user") {
		t.Fatalf("alice gives the node to bob: %v; want refused", err)
	}
	w.cancel()

	// Persisted across a restart.
	e.restart()
	if n := nodeByID(t, e, box.ID); n.User != 0 || !slices.Equal(n.Tags, []string{"tag:prod"}) {
		t.Fatalf("after restart: user %d tags %v; want tag:prod, no owner", n.User, n.Tags)
	}
	// The admin (By 0) untags it and gives it to bob.
	n, err = e.s.SetNodeTags(ctx, box.ID, []string{}, TagNodeOptions{User: bob.ID})
	if err != nil || n.User != bob.ID || len(n.Tags) != 0 {
		t.Fatalf("admin untags box for bob: %+v %v", n, err)
	}
	e.restart()
	if n := nodeByID(t, e, box.ID); n.User != bob.ID || len(n.Tags) != 0 {
		t.Fatalf("after restart: user %d tags %v; want bob's, untagged", n.User, n.Tags)
	}
}

func TestDeleteUser(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	alice, bob := e.user("alice@example.com"), e.user("bob@example.com")
	serverM, server := e.mustRegister(e.authKey(AuthKeyOptions{Tags: []string{"tag:prod"}}), "server")
	bobLaptopM, bobLaptop := e.mustRegister(e.authKey(AuthKeyOptions{User: bob.ID}), "bob-laptop")
	_, bobBox := e.mustRegister(e.authKey(AuthKeyOptions{User: bob.ID}), "bob-box")
	_, aliceLaptop := e.mustRegister(e.authKey(AuthKeyOptions{User: alice.ID}), "alice-laptop")
	unused := e.authKey(AuthKeyOptions{User: bob.ID, Reusable: true})
	bobTagged := e.authKey(AuthKeyOptions{Tags: []string{"tag:ci"}}) // no owner: stays usable
	ws, wb := serverM.watch(t), bobLaptopM.watch(t)
	ws.waitFor(t, "server sees bob's nodes", func(nm *controlws.NetworkMap) bool {
		return hasPeer(nm, bobLaptop.ID) && hasPeer(nm, bobBox.ID)
	})
	// Bob's laptop must hold its stream before the deletion: the server names the reason
	// on the stream, and a stream not yet open would only see the connection close.
	wb.waitFor(t, "bob's laptop has its map", func(*controlws.NetworkMap) bool { return true })

	if _, err := e.s.DeleteUser(ctx, "nobody@example.com"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "nobody@example.com") {
		t.Fatalf("delete an unknown user: %v", err)
	}
	du, err := e.s.DeleteUser(ctx, " Bob@Example.com ")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(du.DeletedNodes)
	if du.User.ID != bob.ID || !slices.Equal(du.DeletedNodes, []int64{bobLaptop.ID, bobBox.ID}) || len(du.RevokedKeys) != 3 {
		t.Fatalf("deleted: %+v; want bob, his two nodes, his three keys", du)
	}
	// His nodes leave every map and their own streams end; alice and the tagged server stay.
	nm := ws.waitFor(t, "server loses bob's nodes", func(nm *controlws.NetworkMap) bool {
		return !hasPeer(nm, bobLaptop.ID) && !hasPeer(nm, bobBox.ID) && hasPeer(nm, aliceLaptop.ID)
	})
	for _, u := range nm.Users {
		if u.ID == bob.ID {
			t.Errorf("server's map still lists user bob: %+v", nm.Users)
		}
	}
	wantCode(t, wb.ended(t), controlws.CodeNodeDeleted)
	check := func() {
		t.Helper()
		for _, n := range e.nodes() {
			if n.ID == bobLaptop.ID || n.ID == bobBox.ID {
				t.Errorf("bob's node %d (%s) still listed", n.ID, n.Name)
			}
		}
		if _, err := e.s.UserByEmail(ctx, "bob@example.com"); !errors.Is(err, ErrNotFound) {
			t.Errorf("bob after deletion: %v; want not found", err)
		}
		_, err := e.newMachine().register(unused, "again")
		wantCode(t, err, controlws.CodeRevokedKey)
	}
	check()
	if _, err := e.s.DeleteUser(ctx, "bob@example.com"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete bob twice: %v", err)
	}
	ws.cancel()
	e.restart()
	check()
	if len(e.nodes()) != 2 {
		t.Errorf("after restart: %+v; want alice's laptop and the server", e.nodes())
	}
	// A tagged key nobody owns is not bob's; and his email may be used again.
	e.mustRegister(bobTagged, "ci")
	if _, err := e.s.CreateUser(ctx, "bob@example.com", RoleMember); err != nil {
		t.Fatalf("re-create bob: %v", err)
	}
	_ = server
}
