package console

import (
	"strings"
	"testing"

	"tsconnect/console/api"
	"tsconnect/control"
	"tsconnect/controlws"
)

// TestRecordingsLaunch: an admin and a user recordingViewers names get a key of theirs and
// the recorder nodes' overlay addresses (the nodes an ssh rule's recorder names); another
// member is refused naming why; the admin socket's local admin is no user with a node.
func TestRecordingsLaunch(t *testing.T) {
	e := newEnv(t)
	e.user("ann@example.com", control.RoleAdmin, "pw-ann-12345")
	e.user("sam@example.com", control.RoleMember, "pw-sam-12345")
	e.user("bob@example.com", control.RoleMember, "pw-bob-12345")
	e.setPolicy(`{
		"tagOwners": {"tag:rec": [], "tag:prod": []},
		"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
		"ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["tag:prod"], "users": ["root"], "recorder": ["tag:rec"]}],
		"recordingViewers": ["sam@example.com"],
	}`)
	_, _, rec := e.register(control.AuthKeyOptions{Tags: []string{"tag:rec"}}, controlws.Hostinfo{Hostname: "rec"})
	e.register(control.AuthKeyOptions{Tags: []string{"tag:prod"}}, controlws.Hostinfo{Hostname: "prod"})
	for _, who := range []string{"ann", "sam"} {
		var l api.RecordingsLaunch
		e.client().mustLogin(who+"@example.com", "pw-"+who+"-12345").do("POST", "/api/v1/recordings/launch", nil).want(t, 201, "").decode(t, &l)
		if !strings.HasPrefix(l.AuthKey, "tskey-") || l.ControlURL == "" || len(l.Recorders) != 1 ||
			l.Recorders[0].Name != rec.Name || l.Recorders[0].Address != rec.Addresses[0].Addr().String()+":8410" {
			t.Errorf("%s's launch %+v", who, l)
		}
	}
	a := e.client().mustLogin("bob@example.com", "pw-bob-12345").do("POST", "/api/v1/recordings/launch", nil).want(t, 403, "not_allowed")
	if !strings.Contains(a.str("error"), "bob@example.com is a member the policy's recordingViewers does not name") {
		t.Errorf("bob's refusal: %s", a.raw)
	}
}
