package console

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"tsconnect/console/api"
	"tsconnect/control"
	"tsconnect/control/adminclient"
	"tsconnect/controlws"
)

// TestAdminSocket: the local admin on the real socket (mode 0600), through adminclient.
func TestAdminSocket(t *testing.T) {
	e := newEnv(t)
	c := e.socket()
	fi, err := os.Stat(filepath.Join(e.dir, "admin.sock"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket: %v mode %v, want 0600", err, fi.Mode())
	}
	ctx := context.Background()
	me, err := c.Me(ctx)
	if err != nil || me.Via != "admin socket" || me.User.Email != "local admin" || me.User.Role != "admin" || me.CSRFToken != "" {
		t.Fatalf("me on the socket: %+v %v; want the local admin, no CSRF token", me, err)
	}
	u, err := c.CreateUser(ctx, api.CreateUserRequest{Email: "quinn@example.com", Role: "admin"})
	if err != nil || u.ID == 0 || u.Role != "admin" || u.DisplayName != "quinn" {
		t.Fatalf("create user: %+v %v", u, err)
	}
	_, err = c.CreateUser(ctx, api.CreateUserRequest{Email: "quinn@example.com"})
	wantAPIError(t, err, http.StatusConflict, api.CodeExists)
	_, err = c.CreateUser(ctx, api.CreateUserRequest{Email: "not an email"})
	wantAPIError(t, err, http.StatusBadRequest, api.CodeBadRequest)
	_, err = c.CreateUser(ctx, api.CreateUserRequest{Email: "r@example.com", Role: "root"})
	wantAPIError(t, err, http.StatusBadRequest, api.CodeBadRequest)
	us, err := c.Users(ctx)
	if err != nil || len(us) != 1 {
		t.Fatalf("users: %+v %v", us, err)
	}

	secret, k, err := c.CreateAuthKey(ctx, api.CreateKeyRequest{User: "quinn@example.com", Ephemeral: true, ExpiresIn: 3600})
	if err != nil || k.Owner == nil || k.Owner.ID != u.ID || !k.Ephemeral || len(secret) < 40 || secret[:6] != "tskey-" || secret[6:18] != k.Prefix {
		t.Fatalf("create key: %q %+v %v", secret, k, err)
	}
	_, _, err = c.CreateAuthKey(ctx, api.CreateKeyRequest{User: "nobody@example.com"})
	wantAPIError(t, err, http.StatusNotFound, api.CodeNotFound)
	_, _, err = c.CreateAuthKey(ctx, api.CreateKeyRequest{User: api.UserName(strconv.FormatInt(u.ID, 10)), ExpiresIn: -1})
	wantAPIError(t, err, http.StatusBadRequest, api.CodeBadRequest)
	_, _, err = c.CreateAuthKey(ctx, api.CreateKeyRequest{})
	if ae := wantAPIError(t, err, http.StatusBadRequest, api.CodeBadRequest); !strings.Contains(ae.Message, "name the user") {
		t.Errorf("an untagged key of nobody: %q; want the local admin told to name a user", ae.Message)
	}
	if err := c.RevokeAuthKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	wantAPIError(t, c.RevokeAuthKey(ctx, 999), http.StatusNotFound, api.CodeNotFound)
	ks, err := c.AuthKeys(ctx)
	if err != nil || len(ks) != 1 || !ks[0].Revoked {
		t.Fatalf("keys: %+v %v", ks, err)
	}
	ns, err := c.Nodes(ctx)
	if err != nil || ns == nil || len(ns) != 0 {
		t.Fatalf("nodes: %+v %v", ns, err)
	}
	err = c.DeleteNode(ctx, 42)
	wantAPIError(t, err, http.StatusNotFound, api.CodeNotFound)
	if err.Error() != "no node 42: not found" {
		t.Errorf("message %q", err)
	}
}

func TestAdminClientNoServer(t *testing.T) {
	c := adminclient.New(t.TempDir())
	defer c.Close()
	_, err := c.Users(context.Background())
	if err == nil || !strings.Contains(err.Error(), "admin.sock") {
		t.Fatalf("no server: %v; want an error naming the socket", err)
	}
}

// TestAdminSocketTagsAndUserDelete drives node tagging and user deletion through the admin socket.
func TestAdminSocketTagsAndUserDelete(t *testing.T) {
	e := newEnv(t)
	c := e.socket()
	ctx := context.Background()
	if _, err := c.SetPolicy(ctx, []byte(`{"tagOwners": {"tag:prod": ["alice@example.com"]}, "acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}`), "test", adminclient.AnyVersion); err != nil {
		t.Fatal(err)
	}
	alice, _ := c.CreateUser(ctx, api.CreateUserRequest{Email: "alice@example.com"})
	if _, err := c.CreateUser(ctx, api.CreateUserRequest{Email: "bob@example.com"}); err != nil {
		t.Fatal(err)
	}
	secret, _, err := c.CreateAuthKey(ctx, api.CreateKeyRequest{User: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	_, _, reg, err := e.registerWith(secret, controlws.Hostinfo{Hostname: "box"})
	if err != nil {
		t.Fatal(err)
	}
	id := reg.Node.ID

	_, err = c.SetNodeTags(ctx, id, api.SetTagsRequest{Tags: []string{"tag:prod"}, By: "bob@example.com"})
	wantAPIError(t, err, http.StatusBadRequest, api.CodeBadRequest)
	_, err = c.SetNodeTags(ctx, id, api.SetTagsRequest{Tags: []string{"tag:prod"}, By: "nobody@example.com"})
	wantAPIError(t, err, http.StatusNotFound, api.CodeNotFound)
	_, err = c.SetNodeTags(ctx, 999, api.SetTagsRequest{Tags: []string{"tag:prod"}})
	wantAPIError(t, err, http.StatusNotFound, api.CodeNotFound)
	n, err := c.SetNodeTags(ctx, id, api.SetTagsRequest{Tags: []string{"tag:prod"}, By: "alice@example.com"})
	if err != nil || n.Owner != nil || !slices.Equal(n.Tags, []string{"tag:prod"}) {
		t.Fatalf("alice tags box: %+v %v", n, err)
	}
	_, err = c.SetNodeTags(ctx, id, api.SetTagsRequest{})
	wantAPIError(t, err, http.StatusBadRequest, api.CodeBadRequest)
	if !strings.Contains(err.Error(), "needs a new owner") {
		t.Errorf("untag without owner: %q", err)
	}
	n, err = c.SetNodeTags(ctx, id, api.SetTagsRequest{Owner: "alice@example.com"})
	if err != nil || n.Owner == nil || n.Owner.ID != alice.ID || len(n.Tags) != 0 {
		t.Fatalf("admin untags box for alice: %+v %v", n, err)
	}

	_, err = c.DeleteUser(ctx, "nobody@example.com")
	wantAPIError(t, err, http.StatusNotFound, api.CodeNotFound)
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

// TestUsersByIDOrEmail: {user} and the body's user fields take an id or an email, on the
// socket and for a sign-in alike.
func TestUsersByIDOrEmail(t *testing.T) {
	e := newEnv(t)
	c := e.socket()
	ctx := context.Background()
	e.user("ada@example.com", control.RoleAdmin, "admin password")
	bob := e.user("bob@example.com", control.RoleMember, "bob password")
	cy := e.user("cy@example.com", control.RoleMember, "cy password")
	bobID := strconv.FormatInt(bob.ID, 10)

	// By id and by email, one user: the socket sets bob's password by id, he logs in with it.
	if u, err := c.SetPassword(ctx, bobID, "new bob password"); err != nil || u.Email != "bob@example.com" {
		t.Fatalf("set password by id: %+v %v", u, err)
	}
	e.client().mustLogin("bob@example.com", "new bob password")
	if u, err := c.SetPassword(ctx, "BOB@example.com ", "third bob password"); err != nil || u.ID != bob.ID {
		t.Fatalf("set password by email: %+v %v", u, err)
	}
	_, _, err := c.CreateAuthKey(ctx, api.CreateKeyRequest{User: api.UserName(bobID)})
	if err != nil {
		t.Fatalf("key for bob by id: %v", err)
	}
	_, err = c.SetPassword(ctx, "0", "whatever password")
	wantAPIError(t, err, http.StatusBadRequest, api.CodeBadRequest)
	_, err = c.SetPassword(ctx, "99", "whatever password")
	wantAPIError(t, err, http.StatusNotFound, api.CodeNotFound)

	// A sign-in deletes cy by email and bob by id; the JSON body's owner may be a number.
	admin := e.client().mustLogin("ada@example.com", "admin password")
	admin.do("DELETE", "/api/v1/users/cy@example.com", nil).want(t, http.StatusOK, "")
	if _, err := e.srv.UserByID(ctx, cy.ID); !errors.Is(err, control.ErrNotFound) {
		t.Fatalf("cy after DELETE by email: %v", err)
	}
	a := admin.do("POST", "/api/v1/keys", map[string]any{"user": bob.ID}).want(t, http.StatusCreated, "")
	var ck api.CreatedKey
	a.decode(t, &ck)
	if ck.Key.Owner == nil || ck.Key.Owner.ID != bob.ID {
		t.Fatalf("key for a numeric user: %s", a.raw)
	}
	admin.do("DELETE", "/api/v1/users/"+bobID, nil).want(t, http.StatusOK, "")
	if us, _ := c.Users(ctx); len(us) != 1 || us[0].Email != "ada@example.com" {
		t.Fatalf("users left: %+v", us)
	}
}
