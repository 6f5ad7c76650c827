package control_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"tsconnect/control"
	"tsconnect/control/adminclient"
	"tsconnect/control/controltest"
)

func TestAdminAPI(t *testing.T) {
	ts := controltest.New(t, &controltest.Options{Admin: true})
	dir := ts.Dir
	fi, err := os.Stat(filepath.Join(dir, "admin.sock"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket: %v mode %v, want 0600", err, fi.Mode())
	}

	ctx := context.Background()
	c := adminclient.New(dir)
	defer c.Close()
	u, err := c.CreateUser(ctx, "quinn@example.com", control.RoleAdmin)
	if err != nil || u.ID == 0 || u.Role != control.RoleAdmin || u.DisplayName != "quinn" {
		t.Fatalf("create user: %+v %v", u, err)
	}
	_, err = c.CreateUser(ctx, "quinn@example.com", "")
	wantAPIError(t, err, http.StatusConflict)
	_, err = c.CreateUser(ctx, "not an email", "")
	wantAPIError(t, err, http.StatusBadRequest)
	_, err = c.CreateUser(ctx, "r@example.com", "root")
	wantAPIError(t, err, http.StatusBadRequest)
	us, err := c.Users(ctx)
	if err != nil || len(us) != 1 {
		t.Fatalf("users: %+v %v", us, err)
	}

	secret, info, err := c.CreateAuthKey(ctx, control.CreateKeyRequest{UserEmail: "quinn@example.com", Ephemeral: true, Expiry: "1h"})
	if err != nil || info.User != u.ID || !info.Ephemeral || len(secret) < 40 || secret[:6] != "tskey-" || secret[6:18] != info.Prefix {
		t.Fatalf("create key: %q %+v %v", secret, info, err)
	}
	_, _, err = c.CreateAuthKey(ctx, control.CreateKeyRequest{UserEmail: "nobody@example.com"})
	wantAPIError(t, err, http.StatusNotFound)
	_, _, err = c.CreateAuthKey(ctx, control.CreateKeyRequest{User: u.ID, Expiry: "soon"})
	wantAPIError(t, err, http.StatusBadRequest)
	if err := c.RevokeAuthKey(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	wantAPIError(t, c.RevokeAuthKey(ctx, 999), http.StatusNotFound)
	ks, err := c.AuthKeys(ctx)
	if err != nil || len(ks) != 1 || !ks[0].Revoked {
		t.Fatalf("keys: %+v %v", ks, err)
	}
	ns, err := c.Nodes(ctx)
	if err != nil || ns == nil || len(ns) != 0 {
		t.Fatalf("nodes: %+v %v", ns, err)
	}
	err = c.DeleteNode(ctx, 42)
	wantAPIError(t, err, http.StatusNotFound)
	if err.Error() != "control: no node 42: not found" {
		t.Errorf("message %q", err)
	}
}

func TestAdminClientNoServer(t *testing.T) {
	c := adminclient.New(t.TempDir())
	defer c.Close()
	_, err := c.Users(context.Background())
	if err == nil {
		t.Fatal("no error without a server")
	}
	t.Log(err)
}

func wantAPIError(t *testing.T, err error, status int) {
	t.Helper()
	var ae *adminclient.Error
	if !errors.As(err, &ae) || ae.Status != status || ae.Message == "" {
		t.Fatalf("got %v, want an admin API error with status %d", err, status)
	}
}
