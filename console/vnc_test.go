package console

import (
	"strconv"
	"strings"
	"testing"

	"tsconnect/console/api"
	"tsconnect/control"
)

// TestVNCOnlyWherePolicyReaches5900: a machine that forwards VNC lists vnc, and vncAllowed only
// for the users the acls let reach its port 5900; only they get a VNC launch, and a machine
// without the forward gets none either.
func TestVNCOnlyWherePolicyReaches5900(t *testing.T) {
	e := newEnv(t)
	e.user("alice@example.com", control.RoleMember, "alice password")
	e.user("bob@example.com", control.RoleMember, "bob password")
	e.setPolicy(`{
		"tagOwners": {"tag:desk": ["alice@example.com"]},
		"acls": [
			{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:desk:5900"]},
			{"action": "accept", "src": ["*"], "dst": ["*:22"]},
		],
	}`)
	hi := hostinfo("desk")
	hi.VNC = true
	_, _, desk := e.register(control.AuthKeyOptions{Tags: []string{"tag:desk"}}, hi)
	_, _, plain := e.register(control.AuthKeyOptions{Tags: []string{"tag:desk"}}, hostinfo("plain"))
	a := e.client().mustLogin("alice@example.com", "alice password")
	b := e.client().mustLogin("bob@example.com", "bob password")
	flags := func(c *client) map[string][2]bool {
		var l api.NodeList
		c.do("GET", "/api/v1/nodes", nil).want(t, 200, "").decode(t, &l)
		m := map[string][2]bool{}
		for _, n := range l.Nodes {
			m[n.Name] = [2]bool{n.VNC, n.VNCAllowed}
		}
		return m
	}
	if got := flags(a); got[desk.Name] != [2]bool{true, true} || got[plain.Name] != [2]bool{false, false} {
		t.Errorf("alice sees vnc/vncAllowed %v; want desk true/true, plain false/false", got)
	}
	if got := flags(b); got[desk.Name] != [2]bool{true, false} {
		t.Errorf("bob sees vnc/vncAllowed %v; want desk true/false (no rule gives him port 5900)", got)
	}
	path := func(id int64) string { return "/api/v1/nodes/" + strconv.FormatInt(id, 10) + "/vnc-launch" }
	var l api.VNCLaunch
	a.do("POST", path(desk.ID), nil).want(t, 201, "").decode(t, &l)
	if l.Host != desk.Name || !strings.HasPrefix(l.AuthKey, "tskey-") {
		t.Errorf("alice's VNC launch %+v", l)
	}
	r := b.do("POST", path(desk.ID), nil).want(t, 403, "not_allowed")
	if !strings.Contains(string(r.raw), "port 5900") {
		t.Errorf("bob's refusal %q: want it to name port 5900", string(r.raw))
	}
	a.do("POST", path(plain.ID), nil).want(t, 403, "not_allowed")
}
