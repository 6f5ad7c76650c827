package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"tsconnect/console/api"
	"tsconnect/control"
	"tsconnect/controlws"
	"tsconnect/policy"
)

func hostinfo(name string) controlws.Hostinfo {
	return controlws.Hostinfo{Hostname: name, OS: "linux", SSH: true}
}

// testPolicy: alice (a member) may SSH to tag:server as ubuntu (accept) or ops (check);
// bob has no ssh rule. alice owns tag:web.
const testPolicy = `{
	"tagOwners": {"tag:server": ["ada@example.com"], "tag:web": ["alice@example.com"]},
	"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
	"ssh": [
		{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:server"], "users": ["ubuntu"]},
		{"action": "check", "src": ["alice@example.com"], "dst": ["tag:server"], "users": ["ops"]},
	],
}
`

type sessionEnv struct {
	*env
	alice, bob control.User
	server     controlws.Node
	a, b       *client
}

func newSessionEnv(t *testing.T) *sessionEnv {
	e := newEnv(t)
	e.user("ada@example.com", control.RoleAdmin, "admin password")
	s := &sessionEnv{env: e}
	s.alice = e.user("alice@example.com", control.RoleMember, "alice password")
	s.bob = e.user("bob@example.com", control.RoleMember, "bob password")
	e.setPolicy(testPolicy)
	_, _, s.server = e.register(control.AuthKeyOptions{Tags: []string{"tag:server"}}, hostinfo("server"))
	s.a = e.client().mustLogin("alice@example.com", "alice password")
	s.b = e.client().mustLogin("bob@example.com", "bob password")
	return s
}

func (s *sessionEnv) path(suffix string) string {
	return "/api/v1/nodes/" + strconv.FormatInt(s.server.ID, 10) + suffix
}

func TestSSHUsersArePolicySSHLogins(t *testing.T) {
	s := newSessionEnv(t)
	var got api.SSHUsers
	s.a.do("GET", s.path("/ssh-users"), nil).want(t, 200, "").decode(t, &got)

	p, err := policy.Parse("p", []byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	want := p.SSHLogins(policy.Node{User: "alice@example.com"},
		policy.Node{ID: s.server.ID, Name: s.server.Name, Addresses: s.server.Addresses, Tags: s.server.Tags})
	if len(want) != 2 || len(got.Users) != len(want) || got.Reason != "" {
		t.Fatalf("ssh-users %+v, policy.SSHLogins %+v", got, want)
	}
	for i := range want {
		if got.Users[i].Name != want[i].User || got.Users[i].Action != string(want[i].Action) {
			t.Errorf("user %d: %+v, want %+v", i, got.Users[i], want[i])
		}
	}

	// bob has no rule: no users, and a reason naming him and the machine.
	s.b.do("GET", s.path("/ssh-users"), nil).want(t, 200, "").decode(t, &got)
	if len(got.Users) != 0 || !strings.Contains(got.Reason, "bob@example.com") || !strings.Contains(got.Reason, "server") {
		t.Errorf("bob's ssh-users: %+v", got)
	}
	s.a.do("GET", "/api/v1/nodes/999/ssh-users", nil).want(t, 404, "not_found")
}

func TestSessionKey(t *testing.T) {
	s := newSessionEnv(t)
	before := time.Now()
	a := s.a.do("POST", s.path("/ssh-launch"), map[string]string{"user": "ubuntu"}).want(t, 201, "")
	var sess api.SSHLaunch
	a.decode(t, &sess)
	if sess.ControlURL != s.hs.URL || sess.Host != s.server.Name || sess.User != "ubuntu" || !strings.HasPrefix(sess.AuthKey, "tskey-") {
		t.Errorf("session %+v", sess)
	}
	if exp := sess.Expires; exp.IsZero() || exp.After(before.Add(5*time.Minute+time.Second)) {
		t.Errorf("expires %v: want at most 5 minutes from now", sess.Expires)
	}
	ks, _ := s.srv.AuthKeys(context.Background())
	k := ks[len(ks)-1]
	if k.User != s.alice.ID || !k.Ephemeral || k.Reusable || len(k.Tags) != 0 || k.Expires.Sub(k.Created) > 5*time.Minute {
		t.Errorf("session key %+v: want alice's, ephemeral, single-use, untagged, ≤ 5 min", k)
	}
	// The browser node registers with it once: ephemeral, untagged, alice's.
	_, _, r, err := s.registerWith(sess.AuthKey, controlws.Hostinfo{Hostname: "browser"})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Node.Ephemeral || len(r.Node.Tags) != 0 || r.Node.User != s.alice.ID {
		t.Errorf("session node %+v", r.Node)
	}
	_, _, _, err = s.registerWith(sess.AuthKey, controlws.Hostinfo{Hostname: "again"})
	if ce, ok := err.(*controlws.Error); !ok || ce.Code != controlws.CodeUsedKey {
		t.Errorf("second use of a session key: %v, want %s", err, controlws.CodeUsedKey)
	}

	// A check rule's user is offered too; root and bob are refused.
	s.a.do("POST", s.path("/ssh-launch"), map[string]string{"user": "ops"}).want(t, 201, "")
	if a := s.a.do("POST", s.path("/ssh-launch"), map[string]string{"user": "root"}).want(t, 403, "not_allowed"); !strings.Contains(a.str("error"), "root") {
		t.Errorf("refusal %s does not name the user", a.raw)
	}
	s.b.do("POST", s.path("/ssh-launch"), map[string]string{"user": "ubuntu"}).want(t, 403, "not_allowed")
}

func TestMemberTaggedKeys(t *testing.T) {
	s := newSessionEnv(t)
	a := s.a.do("POST", "/api/v1/keys", map[string]any{"tags": []string{"tag:server"}}).want(t, 403, "forbidden")
	if !strings.Contains(a.str("error"), "tag:server") {
		t.Errorf("refusal %q does not name the tag", a.str("error"))
	}
	var created struct {
		Key    api.Key `json:"key"`
		Secret string  `json:"secret"`
	}
	s.a.do("POST", "/api/v1/keys", map[string]any{"tags": []string{"tag:web"}, "reusable": true, "expiresIn": 3600}).want(t, 201, "").decode(t, &created)
	if !strings.HasPrefix(created.Secret, "tskey-"+created.Key.Prefix+"-") || created.Key.Owner == nil || created.Key.Owner.ID != s.alice.ID ||
		len(created.Key.Tags) != 1 || !created.Key.Reusable {
		t.Errorf("created %+v", created)
	}
	// The secret is shown once: the list never has it.
	lst := s.a.do("GET", "/api/v1/keys", nil).want(t, 200, "")
	if strings.Contains(string(lst.raw), created.Secret) {
		t.Error("key list shows a secret")
	}
}

func TestPolicyPutBadKeepsOld(t *testing.T) {
	s := newSessionEnv(t)
	ad := s.client().mustLogin("ada@example.com", "admin password")
	old := ad.do("GET", "/api/v1/policy", nil).want(t, 200, "")
	bad := "{\n\t\"acls\": [\n\t\t{\"action\": \"accept\", \"src\": [\"*\"], \"dst\": [\"nosuchhost:22\"]},\n\t],\n}\n"
	var refused api.Error
	ad.do("PUT", "/api/v1/policy", map[string]string{"text": bad}, "If-Match", old.header.Get("ETag")).want(t, 400, "bad_policy").decode(t, &refused)
	if len(refused.Problems) == 0 || refused.Problems[0].Line != 3 || refused.Problems[0].Message == "" {
		t.Fatalf("problems %+v, want one at line 3", refused.Problems)
	}
	ad.do("POST", "/api/v1/policy/validate", map[string]string{"text": bad}).want(t, 400, "bad_policy")
	now := ad.do("GET", "/api/v1/policy", nil).want(t, 200, "")
	if now.str("text") != old.str("text") || now.body["version"] != old.body["version"] {
		t.Errorf("a refused policy changed the one in force: %s", now.raw)
	}
	good := strings.Replace(testPolicy, `"users": ["ubuntu"]`, `"users": ["ubuntu", "deploy"]`, 1)
	if v := ad.do("POST", "/api/v1/policy/validate", map[string]string{"text": good}).want(t, 200, ""); v.body["ok"] != true {
		t.Errorf("validate: %s", v.raw)
	}
	put := ad.do("PUT", "/api/v1/policy", map[string]string{"text": good}, "If-Match", old.header.Get("ETag")).want(t, 200, "")
	if put.body["version"].(float64) != old.body["version"].(float64)+1 || put.str("author") != "ada@example.com via the console" || put.str("time") == "" {
		t.Errorf("put: %s", put.raw)
	}
	var got api.SSHUsers
	s.a.do("GET", s.path("/ssh-users"), nil).want(t, 200, "").decode(t, &got)
	if len(got.Users) != 3 {
		t.Errorf("after the new policy alice has %+v, want ubuntu, deploy, ops", got.Users)
	}
}

func TestHostileNodeStringsAreData(t *testing.T) {
	e := newEnv(t)
	u := e.user("ada@example.com", control.RoleAdmin, "correct horse")
	hostile := `<img src=x onerror="alert(1)">`
	_, _, _ = e.register(control.AuthKeyOptions{User: u.ID}, controlws.Hostinfo{Hostname: hostile, OS: hostile + "</script>"})
	c := e.client().mustLogin("ada@example.com", "correct horse")
	a := c.do("GET", "/api/v1/nodes", nil).want(t, 200, "")
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	var ms api.NodeList
	a.decode(t, &ms)
	if len(ms.Nodes) != 1 || ms.Nodes[0].OS != hostile+"</script>" {
		t.Fatalf("machines %+v: want the OS exactly as the node sent it", ms.Nodes)
	}
	if strings.Contains(ms.Nodes[0].Name, "<") {
		t.Errorf("name %q: control makes DNS-safe names", ms.Nodes[0].Name)
	}
}

func TestExpireMachine(t *testing.T) {
	e := newEnv(t)
	u := e.user("ada@example.com", control.RoleAdmin, "correct horse")
	e.setPolicy(`{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}`)
	_, _, n1 := e.register(control.AuthKeyOptions{User: u.ID}, hostinfo("one"))
	c2, nk2, _ := e.register(control.AuthKeyOptions{User: u.ID}, hostinfo("two"))
	maps := make(chan *controlws.NetworkMap, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c2.WatchMaps(ctx, controlws.MapRequest{NodeKey: nk2.Public()}, func(nm *controlws.NetworkMap) { maps <- nm })
	}()
	defer func() { cancel(); <-done }()
	waitMap(t, maps, func(nm *controlws.NetworkMap) bool { return len(nm.Peers) == 1 })

	c := e.client().mustLogin("ada@example.com", "correct horse")
	var m api.Node
	c.do("POST", "/api/v1/nodes/"+strconv.FormatInt(n1.ID, 10)+"/expire", nil).want(t, 200, "").decode(t, &m)
	if !m.Expired || m.ID != n1.ID {
		t.Errorf("expired machine %+v", m)
	}
	waitMap(t, maps, func(nm *controlws.NetworkMap) bool { return len(nm.Peers) == 0 })
	var got api.SSHUsers
	c.do("GET", "/api/v1/nodes/"+strconv.FormatInt(n1.ID, 10)+"/ssh-users", nil).want(t, 200, "").decode(t, &got)
	if len(got.Users) != 0 || !strings.Contains(got.Reason, "expired") {
		t.Errorf("ssh-users of an expired machine: %+v", got)
	}
}

// waitMap reads maps until one satisfies cond (hang guard 20 s).
func waitMap(t *testing.T, maps <-chan *controlws.NetworkMap, cond func(*controlws.NetworkMap) bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case nm := <-maps:
			if nm != nil && cond(nm) {
				return
			}
		case <-deadline:
			t.Fatal("no map matched")
		}
	}
}

func TestEventsWebSocket(t *testing.T) {
	e := newEnv(t)
	u := e.user("ada@example.com", control.RoleAdmin, "correct horse")
	c := e.client().mustLogin("ada@example.com", "correct horse")
	wsURL := "ws" + strings.TrimPrefix(e.hs.URL, "http") + "/api/v1/events"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// A foreign origin is refused, and so is a missing cookie.
	_, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: c.hc, HTTPHeader: http.Header{"Origin": {"http://evil.example"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: %v %v, want 403", err, resp)
	}
	_, resp, err = websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {e.hs.URL}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no cookie: %v %v, want 401", err, resp)
	}

	conn, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: c.hc, HTTPHeader: http.Header{"Origin": {e.hs.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	read := func() api.NodeList {
		t.Helper()
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m api.NodeList
		if err := json.Unmarshal(b, &m); err != nil || m.Type != "nodes" {
			t.Fatalf("message %s: %v", b, err)
		}
		return m
	}
	if m := read(); len(m.Nodes) != 0 {
		t.Fatalf("first message %+v, want no machines", m)
	}
	e.register(control.AuthKeyOptions{User: u.ID}, hostinfo("pushed"))
	for {
		m := read()
		if len(m.Nodes) == 1 && m.Nodes[0].Name == "pushed" {
			break
		}
	}
	conn.Close(websocket.StatusNormalClosure, "")
}

func TestServesConsolePages(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	for _, p := range []string{"/admin/", "/admin/term.html"} {
		a := c.do("GET", p, nil)
		if a.header.Get("Content-Security-Policy") != ContentSecurityPolicy || a.header.Get("X-Content-Type-Options") != "nosniff" || a.header.Get("Referrer-Policy") != "same-origin" {
			t.Errorf("GET %s: %d, headers %v", p, a.status, a.header)
		}
	}
	if a := c.do("GET", "/admin", nil); a.status != http.StatusMovedPermanently || a.header.Get("Location") != "/admin/" {
		t.Errorf("GET /admin: %d %q", a.status, a.header.Get("Location"))
	}
	c.do("GET", "/api/v1/nope", nil).want(t, 404, "not_found")
}

// TestNodesPagingAndSearch: GET /nodes gives pages of ?limit= nodes by ID, ?after= the
// next, with the total; ?q= keeps the nodes whose name or owner matches; bad values are
// refused.
func TestNodesPagingAndSearch(t *testing.T) {
	e := newEnv(t)
	ada := e.user("ada@example.com", control.RoleAdmin, "admin password")
	var ids []int64
	for i := range 5 {
		_, _, n := e.register(control.AuthKeyOptions{User: ada.ID}, hostinfo("web-"+strconv.Itoa(i)))
		ids = append(ids, n.ID)
	}
	_, _, db := e.register(control.AuthKeyOptions{Tags: []string{"tag:db"}}, hostinfo("db"))
	c := e.client().mustLogin("ada@example.com", "admin password")
	page := func(query string) api.NodeList {
		t.Helper()
		var l api.NodeList
		c.do("GET", "/api/v1/nodes"+query, nil).want(t, http.StatusOK, "").decode(t, &l)
		return l
	}
	idsOf := func(l api.NodeList) []int64 {
		var out []int64
		for _, n := range l.Nodes {
			out = append(out, n.ID)
		}
		return out
	}
	all := append(append([]int64{}, ids...), db.ID)
	var got []int64
	after := int64(0)
	for pages := 0; ; pages++ {
		l := page("?limit=2&after=" + strconv.FormatInt(after, 10))
		if l.Total != len(all) || len(l.Nodes) > 2 {
			t.Fatalf("page %d: %d nodes of total %d, want at most 2 of %d", pages, len(l.Nodes), l.Total, len(all))
		}
		got = append(got, idsOf(l)...)
		if l.Next == 0 {
			break
		}
		after = l.Next
	}
	if !slices.Equal(got, all) {
		t.Fatalf("pages gave %v, want %v", got, all)
	}
	if l := page("?q=WEB-3"); l.Total != 1 || len(l.Nodes) != 1 || l.Nodes[0].ID != ids[3] {
		t.Fatalf("q=WEB-3: %v (total %d), want node %d", idsOf(l), l.Total, ids[3])
	}
	if l := page("?q=tag:db"); len(l.Nodes) != 1 || l.Nodes[0].ID != db.ID {
		t.Fatalf("q=tag:db: %v, want the db node", idsOf(l))
	}
	if l := page("?q=ada@"); l.Total != 5 {
		t.Fatalf("q=ada@ matched %d nodes, want ada's 5", l.Total)
	}
	if l := page(""); len(l.Nodes) != len(all) || l.Next != 0 {
		t.Fatalf("no query: %d nodes (next %d), want all %d", len(l.Nodes), l.Next, len(all))
	}
	for _, bad := range []string{"?limit=0", "?limit=1001", "?limit=x", "?after=-1", "?q=" + strings.Repeat("a", 257)} {
		c.do("GET", "/api/v1/nodes"+bad, nil).want(t, http.StatusBadRequest, "bad_request")
	}
}

func TestEventsWebSocketChanges(t *testing.T) {
	e := newEnv(t)
	u := e.user("ada@example.com", control.RoleAdmin, "correct horse")
	c := e.client().mustLogin("ada@example.com", "correct horse")
	wsURL := "ws" + strings.TrimPrefix(e.hs.URL, "http") + "/api/v1/events?changes=1"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, _, first := e.register(control.AuthKeyOptions{User: u.ID}, hostinfo("first"))

	conn, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: c.hc, HTTPHeader: http.Header{"Origin": {e.hs.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	read := func() api.NodeChanges {
		t.Helper()
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m api.NodeChanges
		if err := json.Unmarshal(b, &m); err != nil || m.Type != "changes" {
			t.Fatalf("message %s: %v", b, err)
		}
		return m
	}
	if m := read(); m.Total != 1 || len(m.Changed) != 0 || len(m.Removed) != 0 {
		t.Fatalf("first message %+v, want a total of 1 and no IDs", m)
	}
	// A join names only the new node, never the whole list.
	_, _, second := e.register(control.AuthKeyOptions{User: u.ID}, hostinfo("second"))
	m := read()
	for len(m.Changed) == 0 {
		m = read()
	}
	if m.Total != 2 || !slices.Equal(m.Changed, []int64{second.ID}) || len(m.Removed) != 0 {
		t.Fatalf("after a join: %+v, want changed [%d], total 2", m, second.ID)
	}
	// A deletion names the node removed.
	if a := c.do("DELETE", fmt.Sprintf("/api/v1/nodes/%d", first.ID), nil); a.status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", a.status, a.body)
	}
	m = read()
	for len(m.Removed) == 0 {
		m = read()
	}
	if m.Total != 1 || !slices.Equal(m.Removed, []int64{first.ID}) {
		t.Fatalf("after a deletion: %+v, want removed [%d], total 1", m, first.ID)
	}
	conn.Close(websocket.StatusNormalClosure, "")
}
