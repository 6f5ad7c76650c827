package console

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"tsconnect/control"
	"tsconnect/control/controltest"
	"tsconnect/control/store/pgstore"
	"tsconnect/internal/testpg"
)

// replicaConsoles starts n control replicas on one fresh PostgreSQL database, each with a
// console in front at its own loopback URL; it returns the consoles and their URLs.
func replicaConsoles(t *testing.T, n int) ([]*Console, []string) {
	t.Helper()
	url := testpg.Start(t).NewDatabase(t)
	var cons []*Console
	var urls []string
	for range n {
		cs := controltest.NewUnstarted(t)
		var con *Console
		cs.Start(&controltest.Options{
			Config: func(c *control.Config) {
				st, err := pgstore.Open(context.Background(), url)
				if err != nil {
					t.Fatal(err)
				}
				c.Store = st
			},
			Front: func(srv *control.Server) (http.Handler, func()) {
				var err error
				if con, err = New(srv, Options{ServerURL: cs.URL, Next: srv.Handler(), Logf: t.Logf}); err != nil {
					t.Fatal(err)
				}
				return con, func() { con.Close() }
			},
		})
		cons, urls = append(cons, con), append(urls, cs.URL)
	}
	return cons, urls
}

// TestFormTokensAcrossReplicas: consoles of two control replicas on one PostgreSQL database
// key their form tokens alike, so a page served by one may be posted to the other (behind
// one URL); a token for one form is still no good for another.
func TestFormTokensAcrossReplicas(t *testing.T) {
	cons, _ := replicaConsoles(t, 2)
	tok := cons[0].formToken("check", "0123")
	if !cons[1].validToken(tok, "check", "0123") {
		t.Fatal("a form token of replica A's console is refused by replica B's")
	}
	if cons[1].validToken(tok, "check", "4567") {
		t.Fatal("a form token for one check is accepted for another")
	}
}

// TestLoginLimitsAcrossReplicas: the failed logins of an account count on every replica:
// after maxFailuresPerEmail wrong passwords through A, the next attempt through B is
// refused (429) without a check, and so is the right password; an attempt for another
// account through B is checked as usual.
func TestLoginLimitsAcrossReplicas(t *testing.T) {
	cons, urls := replicaConsoles(t, 2)
	ctx := context.Background()
	for _, email := range []string{"ada@example.com", "bob@example.com"} {
		if _, err := cons[0].srv.CreateUserWithPassword(ctx, email, control.RoleMember, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
	}
	login := func(base, email, password string) int {
		t.Helper()
		body, _ := json.Marshal(loginRequest{Email: email, Password: password})
		req, _ := http.NewRequest("POST", base+"/api/v1/login", bytes.NewReader(body))
		req.Header.Set("Origin", base)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range maxFailuresPerEmail {
		if code := login(urls[0], "ada@example.com", "wrong"); code != http.StatusUnauthorized {
			t.Fatalf("wrong password %d through A: %d; want 401", i+1, code)
		}
	}
	if code := login(urls[1], "ada@example.com", "wrong"); code != http.StatusTooManyRequests {
		t.Fatalf("one more through B: %d; want 429 (the failures through A count)", code)
	}
	if code := login(urls[1], "ada@example.com", "correct horse battery"); code != http.StatusTooManyRequests {
		t.Fatalf("the right password through B while limited: %d; want 429", code)
	}
	if code := login(urls[1], "bob@example.com", "correct horse battery"); code != http.StatusOK {
		t.Fatalf("another account through B: %d; want 200", code)
	}
}
