package console

import (
	"context"
	"testing"

	"tsconnect/control"
	"tsconnect/control/controltest"
	"tsconnect/control/store/pgstore"
	"tsconnect/internal/testpg"
)

// TestFormTokensAcrossReplicas: consoles of two control replicas on one PostgreSQL database
// key their form tokens alike, so a page served by one may be posted to the other (behind
// one URL); a token for one form is still no good for another.
func TestFormTokensAcrossReplicas(t *testing.T) {
	url := testpg.Start(t).NewDatabase(t)
	var cons []*Console
	for range 2 {
		cs := controltest.New(t, &controltest.Options{Config: func(c *control.Config) {
			st, err := pgstore.Open(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			c.Store = st
		}})
		con, err := New(cs.Control, Options{ServerURL: cs.URL})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { con.Close() })
		cons = append(cons, con)
	}
	tok := cons[0].formToken("check", "0123")
	if !cons[1].validToken(tok, "check", "0123") {
		t.Fatal("a form token of replica A's console is refused by replica B's")
	}
	if cons[1].validToken(tok, "check", "4567") {
		t.Fatal("a form token for one check is accepted for another")
	}
}
