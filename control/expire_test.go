package control

import (
	"context"
	"testing"

	"tsconnect/controlws"
)

func TestExpireNodeThenRegisterAgain(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	u := e.user("ada@example.com")
	m, n := e.mustRegister(e.authKey(AuthKeyOptions{User: u.ID}), "one")
	w := m.watch(t)
	w.waitFor(t, "first map", func(*controlws.NetworkMap) bool { return true })

	st, err := e.s.ExpireNode(ctx, n.ID)
	if err != nil || !st.Expired || !st.LoggedOut {
		t.Fatalf("ExpireNode: %+v %v", st, err)
	}
	wantCode(t, w.ended(t), controlws.CodeNotRegistered)
	m.c = e.dial(m.mk) // control closed the connection
	if _, err := m.register("", "one"); err == nil {
		t.Fatal("an expired node registered without a key")
	}
	if _, err := m.register(e.authKey(AuthKeyOptions{User: u.ID}), "one"); err != nil {
		t.Fatal(err)
	}
	st, err = e.s.NodeState(ctx, n.ID)
	if err != nil || st.Expired || st.LoggedOut || st.Node.Name != n.Name {
		t.Errorf("after registering again: %+v %v", st, err)
	}
}

func TestWatchChanges(t *testing.T) {
	e := newEnv(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := make(chan struct{}, 16)
	e.s.WatchChanges(ctx, func() { calls <- struct{}{} })
	u := e.user("ada@example.com")
	<-calls
	e.authKey(AuthKeyOptions{User: u.ID})
	<-calls
	if _, err := e.s.SetPolicy(ctx, []byte(`{}`), "test"); err != nil {
		t.Fatal(err)
	}
	<-calls
}
