package console

import (
	"context"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"tsconnect/control"
	"tsconnect/controlws"
)

// TestPeerPaths: an agent's report of its paths to peers (with no login) shows on GET
// /nodes/{id}/paths, each peer named by its machine, to an admin and to the machine's owner;
// another member is refused; a report without peers (an older agent) lists none.
func TestPeerPaths(t *testing.T) {
	e := newEnv(t)
	e.user("alice@example.com", control.RoleAdmin, "alice password 1")
	bob := e.user("bob@example.com", control.RoleMember, "bob password 12")
	e.user("carol@example.com", control.RoleMember, "carol password 1")
	e.setPolicy(`{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}`)
	agent, _, server := e.register(control.AuthKeyOptions{User: bob.ID}, controlws.Hostinfo{Hostname: "bobs-box", SSH: true})
	_, _, peer := e.register(control.AuthKeyOptions{User: bob.ID}, controlws.Hostinfo{Hostname: "laptop"})
	direct := netip.MustParseAddrPort("192.0.2.7:41641")
	go agent.ReportSSHSessions(context.Background(), controlws.SSHSessions{Logins: []controlws.SSHLogin{}, Peers: []controlws.PeerPath{
		{Peer: peer.Addresses[0].Addr(), LoginPath: controlws.LoginPath{Direct: direct, RegionCode: "tsc", RTTMillis: 0.4}},
		{Peer: netip.MustParseAddr("100.100.100.100"), LoginPath: controlws.LoginPath{RegionCode: "tsc", RTTMillis: 3}},
	}})

	type list struct {
		Paths []struct {
			Peer    string
			Machine *struct{ Name string }
			Direct  string
			Region  string
			RTTMs   float64
		}
	}
	url := "/api/v1/nodes/" + itoa(server.ID) + "/paths"
	admin := e.client().mustLogin("alice@example.com", "alice password 1")
	var got list
	for deadline := time.Now().Add(5 * time.Second); len(got.Paths) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		admin.do("GET", url, nil).want(t, http.StatusOK, "").decode(t, &got)
	}
	if len(got.Paths) != 2 {
		t.Fatalf("admin's paths = %+v, want the agent's two", got.Paths)
	}
	if p := got.Paths[0]; p.Peer != peer.Addresses[0].Addr().String() || p.Machine == nil || p.Machine.Name != peer.Name ||
		p.Direct != direct.String() || p.Region != "" || p.RTTMs != 0.4 {
		t.Errorf("the direct peer as listed: %+v", p)
	}
	if p := got.Paths[1]; p.Peer != "100.100.100.100" || p.Machine != nil || p.Direct != "" || p.Region != "tsc" || p.RTTMs != 3 {
		t.Errorf("the relayed peer of no known machine as listed: %+v", p)
	}

	var mine list
	e.client().mustLogin(bob.Email, "bob password 12").do("GET", url, nil).want(t, http.StatusOK, "").decode(t, &mine)
	if len(mine.Paths) != 2 {
		t.Errorf("the owner sees %+v, want both paths", mine.Paths)
	}
	e.client().mustLogin("carol@example.com", "carol password 1").do("GET", url, nil).want(t, http.StatusForbidden, "")
	admin.do("GET", "/api/v1/nodes/99999/paths", nil).want(t, http.StatusNotFound, "")

	// A report without peers, as an older agent sends, replaces the last: none listed.
	go agent.ReportSSHSessions(context.Background(), controlws.SSHSessions{Logins: []controlws.SSHLogin{
		{Remote: netip.AddrPortFrom(peer.Addresses[0].Addr(), 51000), LocalUser: "root", Started: time.Now(), Sessions: 1},
	}})
	for deadline := time.Now().Add(5 * time.Second); len(got.Paths) != 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		admin.do("GET", url, nil).want(t, http.StatusOK, "").decode(t, &got)
	}
	if len(got.Paths) != 0 {
		t.Errorf("after a report without peers: %+v, want none", got.Paths)
	}
}
