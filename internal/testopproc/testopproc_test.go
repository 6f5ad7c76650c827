package testopproc

import (
	"encoding/json"
	"net/http"
	"testing"

	"tsconnect/internal/leakcheck"
)

// TestStartServesAndCloseStops: the started process serves discovery under the issuer it
// printed, answers the admin calls, and no longer serves once closed (twice is harmless).
func TestStartServesAndCloseStops(t *testing.T) {
	leakcheck.Check(t)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	op := Start(t, Options{
		Users:   []User{{Email: "ada@example.com", Password: "ada-pw", EmailVerified: true}},
		Clients: []Client{{ID: "rp", Secret: "rp-secret", RedirectURIs: []string{"http://127.0.0.1:9/cb"}}},
		Logf:    t.Logf,
	})
	resp, err := hc.Get(op.Issuer() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var d struct{ Issuer string }
	err = json.NewDecoder(resp.Body).Decode(&d)
	resp.Body.Close()
	if err != nil || d.Issuer != op.Issuer() {
		t.Fatalf("discovery names issuer %q (%v), want %q", d.Issuer, err, op.Issuer())
	}
	op.AddUser(User{Email: "bea@example.com", Password: "bea-pw"})
	op.AddClient(Client{ID: "other", Secret: "s", RedirectURIs: []string{"http://127.0.0.1:9/other"}})
	op.BackdateSignIns(0)
	if n := op.Logins(); n != 0 {
		t.Fatalf("Logins() = %d before any sign-in", n)
	}
	op.Close()
	op.Close()
	tr.CloseIdleConnections()
	if resp, err := hc.Get(op.Issuer() + "/jwks"); err == nil {
		resp.Body.Close()
		t.Fatal("the provider still serves after Close")
	}
}
