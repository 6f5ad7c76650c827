package control

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"tsconnect/derpws"
	"tsconnect/key"
)

// TestRelayVerify: a standalone relay asking control admits registered node keys only, and
// control answers only a relay that shows the shared secret.
func TestRelayVerify(t *testing.T) {
	e := newEnv(t, nil)
	u := e.user("v@example.com")
	m, _ := e.mustRegister(e.authKey(AuthKeyOptions{User: u.ID}), "v")
	const secret = "relay-secret-for-tests"
	hs := httptest.NewServer(e.s.RelayVerifyHandler(secret))
	defer hs.Close()
	ctx := context.Background()

	verify := derpws.VerifyURL(hs.URL, secret, hs.Client())
	if err := verify(ctx, m.nk.Public()); err != nil {
		t.Errorf("registered node refused: %v", err)
	}
	err := verify(ctx, key.NewPrivate().Public())
	if err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Errorf("unknown key: %v, want a refusal saying it is not registered", err)
	}
	err = derpws.VerifyURL(hs.URL, "wrong", hs.Client())(ctx, m.nk.Public())
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("relay with a wrong secret: %v, want 401", err)
	}
	resp, err := hs.Client().Post(hs.URL, "application/json", strings.NewReader(`{"NodePublic":"`+m.nk.Public().String()+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("request without a secret answered %s, want 401", resp.Status)
	}
}
