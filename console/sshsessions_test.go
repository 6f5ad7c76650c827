package console

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"tsconnect/control"
	"tsconnect/controlws"
)

// TestSSHSessionsListAndEnd: an agent's report of its live logins shows on GET /sessions
// (whole for an admin, only their own for a member), and an admin's DELETE reaches the agent
// at once as the answer it holds, naming who ended it.
func TestSSHSessionsListAndEnd(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice@example.com", control.RoleAdmin, "alice password 1")
	bob := e.user("bob@example.com", control.RoleMember, "bob password 12")
	e.setPolicy(`{"tagOwners": {"tag:server": ["alice@example.com"]}, "acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}`)
	agent, _, server := e.register(control.AuthKeyOptions{Tags: []string{"tag:server"}}, controlws.Hostinfo{Hostname: "web1", SSH: true})
	_, _, laptop := e.register(control.AuthKeyOptions{User: alice.ID}, controlws.Hostinfo{Hostname: "laptop"})
	from := netip.AddrPortFrom(laptop.Addresses[0].Addr(), 51000)

	answers := make(chan *controlws.SSHSessionsAnswer, 1)
	go func() {
		a, err := agent.ReportSSHSessions(context.Background(), controlws.SSHSessions{Logins: []controlws.SSHLogin{
			{Remote: from, LocalUser: "root", Started: time.Now().Add(-time.Minute), Sessions: 1, BytesIn: 1000, BytesOut: 5000},
		}})
		if err != nil {
			t.Errorf("ReportSSHSessions: %v", err)
		}
		answers <- a
	}()

	admin := e.client().mustLogin("alice@example.com", "alice password 1")
	var list struct {
		Sessions []struct {
			Machine   struct{ ID int64 }
			Remote    string
			From      *struct{ Name string }
			User      *struct{ Email string }
			LocalUser string
			BytesOut  int64
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(list.Sessions) == 0 && time.Now().Before(deadline) {
		admin.do("GET", "/api/v1/sessions", nil).want(t, http.StatusOK, "").decode(t, &list)
		time.Sleep(20 * time.Millisecond)
	}
	if len(list.Sessions) != 1 {
		t.Fatalf("admin's sessions = %+v, want the agent's one", list.Sessions)
	}
	got := list.Sessions[0]
	if got.Machine.ID != server.ID || got.Remote != from.String() || got.From == nil || got.From.Name != laptop.Name ||
		got.User == nil || got.User.Email != "alice@example.com" || got.LocalUser != "root" || got.BytesOut != 5000 {
		t.Errorf("the session as listed: %+v", got)
	}

	member := e.client().mustLogin(bob.Email, "bob password 12")
	var mine struct{ Sessions []any }
	member.do("GET", "/api/v1/sessions", nil).want(t, http.StatusOK, "").decode(t, &mine)
	if len(mine.Sessions) != 0 {
		t.Errorf("bob sees %v, want none (the login is from alice's machine)", mine.Sessions)
	}
	member.do("DELETE", "/api/v1/sessions/"+itoa(server.ID)+"/"+from.String(), nil).want(t, http.StatusForbidden, "")

	admin.do("DELETE", "/api/v1/sessions/"+itoa(server.ID)+"/"+netip.AddrPortFrom(from.Addr(), 9).String(), nil).want(t, http.StatusNotFound, "")
	admin.do("DELETE", "/api/v1/sessions/"+itoa(server.ID)+"/nonsense", nil).want(t, http.StatusBadRequest, "")
	admin.do("DELETE", "/api/v1/sessions/"+itoa(server.ID)+"/"+from.String(), nil).want(t, http.StatusNoContent, "")
	select {
	case a := <-answers:
		if a == nil || len(a.End) != 1 || a.End[0].Remote != from || a.End[0].By != "alice@example.com" {
			t.Errorf("the agent's answer = %+v, want the login ended by alice@example.com", a)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the agent got no answer after the admin ended its login")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
