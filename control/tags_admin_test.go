package control_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"tsconnect/control"
	"tsconnect/control/adminclient"
	"tsconnect/control/controltest"
	"tsconnect/controlws"
	"tsconnect/key"
)

// TestAdminTagsAndUserDelete drives node tagging and user deletion through the admin socket.
func TestAdminTagsAndUserDelete(t *testing.T) {
	ts := controltest.New(t, &controltest.Options{Admin: true})
	dir := ts.Dir
	ctx := context.Background()
	c := adminclient.New(dir)
	defer c.Close()
	if _, err := c.SetPolicy(ctx, []byte(`{"tagOwners": {"tag:prod": ["alice@example.com"]}, "acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}`), "test"); err != nil {
		t.Fatal(err)
	}
	alice, _ := c.CreateUser(ctx, "alice@example.com", "")
	if _, err := c.CreateUser(ctx, "bob@example.com", ""); err != nil {
		t.Fatal(err)
	}
	secret, _, err := c.CreateAuthKey(ctx, control.CreateKeyRequest{UserEmail: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cc, err := controlws.Dial(dctx, controlws.DialOptions{ServerURL: ts.URL, MachineKey: key.NewPrivate()})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	reg, err := cc.Register(dctx, controlws.RegisterRequest{AuthKey: secret, NodeKey: key.NewPrivate().Public(), Hostinfo: controlws.Hostinfo{Hostname: "box"}})
	if err != nil {
		t.Fatal(err)
	}
	id := reg.Node.ID

	_, err = c.SetNodeTags(ctx, id, control.SetTagsRequest{Tags: []string{"tag:prod"}, ByEmail: "bob@example.com"})
	wantAPIError(t, err, http.StatusBadRequest)
	_, err = c.SetNodeTags(ctx, id, control.SetTagsRequest{Tags: []string{"tag:prod"}, ByEmail: "nobody@example.com"})
	wantAPIError(t, err, http.StatusNotFound)
	_, err = c.SetNodeTags(ctx, 999, control.SetTagsRequest{Tags: []string{"tag:prod"}})
	wantAPIError(t, err, http.StatusNotFound)
	n, err := c.SetNodeTags(ctx, id, control.SetTagsRequest{Tags: []string{"tag:prod"}, ByEmail: "alice@example.com"})
	if err != nil || n.User != 0 || !slices.Equal(n.Tags, []string{"tag:prod"}) {
		t.Fatalf("alice tags box: %+v %v", n, err)
	}
	_, err = c.SetNodeTags(ctx, id, control.SetTagsRequest{})
	wantAPIError(t, err, http.StatusBadRequest)
	if !strings.Contains(err.Error(), "needs a new owner") {
		t.Errorf("untag without owner: %q", err)
	}
	n, err = c.SetNodeTags(ctx, id, control.SetTagsRequest{UserEmail: "alice@example.com"})
	if err != nil || n.User != alice.ID || len(n.Tags) != 0 {
		t.Fatalf("admin untags box for alice: %+v %v", n, err)
	}

	_, err = c.DeleteUser(ctx, "nobody@example.com")
	wantAPIError(t, err, http.StatusNotFound)
	du, err := c.DeleteUser(ctx, "alice@example.com")
	if err != nil || du.User.ID != alice.ID || !slices.Equal(du.DeletedNodes, []int64{id}) || len(du.RevokedKeys) != 1 {
		t.Fatalf("delete alice: %+v %v; want her node and key", du, err)
	}
	if ns, err := c.Nodes(ctx); err != nil || len(ns) != 0 {
		t.Fatalf("nodes after deleting alice: %+v %v", ns, err)
	}
	if us, err := c.Users(ctx); err != nil || len(us) != 1 || us[0].Email != "bob@example.com" {
		t.Fatalf("users after deleting alice: %+v %v", us, err)
	}
}
