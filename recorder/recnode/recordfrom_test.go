package recnode

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"tsconnect/control"
	"tsconnect/control/controltest"
	"tsconnect/controlws"
	"tsconnect/internal/eventually"
	"tsconnect/internal/nodetest"
	"tsconnect/node"
	"tsconnect/recorder"
)

// TestRecordFromAcrossChanges: a recorder following control's recordFrom deltas (protocol
// version 6) stays correct while the network changes: each node that joins under an ssh
// rule naming the recorder is taken recordings from at once, a deleted one is refused, and a
// policy change that moves the recorder from one rule to another moves the refusals with it;
// after every step the recorder's list is exactly the addresses of the nodes it records for.
func TestRecordFromAcrossChanges(t *testing.T) {
	cs := controltest.New(t, nil)
	cs.User("alice@example.com", control.RoleAdmin)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := cs.Control.SetPolicy(ctx, []byte(testPolicy), "test"); err != nil {
		t.Fatal(err)
	}
	rec, err := Start(ctx, Config{ControlURL: cs.URL, AuthKey: key(t, cs, control.AuthKeyOptions{Tags: []string{"tag:rec"}}),
		Hostname: "rec", StateDir: t.TempDir(), Store: recorder.Options{MinFree: -1}, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	eventually.True(t, "the recorder's first map", func() bool { return rec.Node().NetMap() != nil })
	if v := rec.Node().MapVersion(); v < controlws.VersionRecordFromDelta {
		t.Fatalf("the recorder's map stream speaks version %d, want %d or later", v, controlws.VersionRecordFromDelta)
	}
	body := `{"version":2,"width":80,"height":24,"timestamp":1764739860,"srcUser":"alice@example.com","srcNode":"laptop","localUser":"root"}` + "\n" +
		`[0.1, "o", "recorded\r\n"]` + "\n"
	join := func(tag, name string) *node.Node {
		return nodetest.Join(t, cs.URL, key(t, cs, control.AuthKeyOptions{Tags: []string{tag}}), name)
	}
	addrsOf := func(ns ...*node.Node) []netip.Addr {
		var out []netip.Addr
		for _, n := range ns {
			for _, p := range n.NetMap().Self.Addresses {
				out = append(out, p.Addr())
			}
		}
		slices.SortFunc(out, netip.Addr.Compare)
		return out
	}
	// recordsFor waits until the recorder's list is exactly the addresses of ns.
	recordsFor := func(step string, ns ...*node.Node) {
		t.Helper()
		want := addrsOf(ns...)
		eventually.True(t, step+": the recorder's recordFrom", func() bool { return slices.Equal(rec.Node().NetMap().RecordFrom, want) })
	}
	var addr string
	accepts := func(n *node.Node) {
		t.Helper()
		name := n.NetMap().Self.Name
		eventually.True(t, "the recorder in "+name+"'s map", func() bool {
			p, ok := n.NetMap().PeerByName("rec")
			if ok {
				addr = fmt.Sprintf("%s:%d", p.Addresses[0].Addr(), recorder.Port)
			}
			return ok
		})
		if code, last, b := upload(t, n, addr, body); code != 200 || last.State != recorder.Ended {
			t.Errorf("%s's upload: %d %s; want it recorded", name, code, b)
		}
	}
	refuses := func(n *node.Node) {
		t.Helper()
		name := n.NetMap().Self.Name
		if code, _, b := upload(t, n, addr, body); code != 403 || !strings.Contains(b, "no ssh rule of node "+strings.SplitN(name, ".", 2)[0]) {
			t.Errorf("%s's upload: %d %s; want 403 saying its rules do not name the recorder", name, code, b)
		}
	}

	web1 := join("tag:server", "web1")
	recordsFor("web1 joined", web1)
	accepts(web1)
	web2 := join("tag:server", "web2")
	other := join("tag:other", "other")
	recordsFor("web2 and other joined", web1, web2)
	accepts(web2)
	refuses(other)

	// web1 leaves: the recorder refuses it (it can no longer reach the port either).
	web1Addr := addrsOf(web1)[0]
	if err := cs.Control.DeleteNode(ctx, web1.NetMap().Self.ID); err != nil {
		t.Fatal(err)
	}
	recordsFor("web1 deleted", web2)
	if err := checkSender(rec.Node().NetMap(), rec.Node().MapVersion(), web1Addr, "web1"); err == nil {
		t.Error("the recorder would take a recording from deleted web1")
	}
	accepts(web2)

	// The policy moves the recorder from tag:server's rule to tag:other's.
	moved := strings.Replace(strings.Replace(testPolicy, `"users": ["root"], "recorder": ["tag:rec"]},`, `"users": ["root"]},`, 1),
		`"dst": ["tag:other"], "users": ["root"]}`, `"dst": ["tag:other"], "users": ["root"], "recorder": ["tag:rec"]}`, 1)
	if moved == testPolicy || !strings.Contains(moved, `"dst": ["tag:other"], "users": ["root"], "recorder"`) {
		t.Fatalf("the moved policy:\n%s", moved)
	}
	if _, err := cs.Control.SetPolicy(ctx, []byte(moved), "test"); err != nil {
		t.Fatal(err)
	}
	recordsFor("the recorder moved to tag:other", other)
	accepts(other)
	refuses(web2)

	// And a node joining under the new rule is taken at once.
	other2 := join("tag:other", "other2")
	recordsFor("other2 joined", other, other2)
	accepts(other2)
}
