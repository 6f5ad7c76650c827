package policy

import "testing"

// TestRecordingViewers: recordingViewers names users by login, by group (idpgroup members
// included) and autogroup:member; everyone else, tagged nodes' "users" and the empty user,
// is not a viewer; Recorder tells the nodes an ssh rule names as recorder.
func TestRecordingViewers(t *testing.T) {
	p, err := Parse("v.hujson", []byte(`{
		"groups": {"group:sec": ["sam@example.com", "idpgroup:security"]},
		"tagOwners": {"tag:rec": [], "tag:prod": []},
		"ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["tag:prod"], "users": ["root"], "recorder": ["tag:rec"]}],
		"recordingViewers": ["group:sec", "Ann@Example.com"],
	}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		user   string
		groups []string
		want   bool
	}{
		{"sam@example.com", nil, true}, {"ann@example.com", nil, true}, {"ida@example.com", []string{"security"}, true},
		{"bob@example.com", nil, false}, {"bob@example.com", []string{"eng"}, false}, {"", []string{"security"}, false},
	} {
		if got := p.RecordingViewer(c.user, c.groups); got != c.want {
			t.Errorf("RecordingViewer(%q, %v) = %v", c.user, c.groups, got)
		}
	}
	if !p.Recorder(recNode(1, "", "tag:rec")) || p.Recorder(recNode(2, "", "tag:prod")) || p.Recorder(recNode(3, "sam@example.com")) {
		t.Error("Recorder: only tag:rec nodes are recorders")
	}
	all, err := Parse("m.hujson", []byte(`{"recordingViewers": ["autogroup:member"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !all.RecordingViewer("bob@example.com", nil) {
		t.Error("autogroup:member: every user is a viewer")
	}
	none, _ := Parse("n.hujson", []byte(`{}`))
	if none.RecordingViewer("bob@example.com", nil) {
		t.Error("no recordingViewers: nobody but admins")
	}
}
