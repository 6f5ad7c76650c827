package console

import (
	"strings"
	"testing"

	"tsconnect/console/api"
)

// TestKeyDescription: POST /api/v1/keys stores the description, the answer and the key
// list show it; a multi-line description is refused with 400 naming the problem.
func TestKeyDescription(t *testing.T) {
	s := newSessionEnv(t)
	var created struct {
		Key api.Key `json:"key"`
	}
	s.a.do("POST", "/api/v1/keys", map[string]any{"ephemeral": true, "description": "kiosk browsers"}).want(t, 201, "").decode(t, &created)
	if created.Key.Description != "kiosk browsers" {
		t.Errorf("created key %+v; want description %q", created.Key, "kiosk browsers")
	}
	var list struct {
		Keys []api.Key `json:"keys"`
	}
	s.a.do("GET", "/api/v1/keys", nil).want(t, 200, "").decode(t, &list)
	if len(list.Keys) != 1 || list.Keys[0].ID != created.Key.ID || list.Keys[0].Description != "kiosk browsers" {
		t.Errorf("key list %+v; want the key with its description", list.Keys)
	}
	bad := s.a.do("POST", "/api/v1/keys", map[string]any{"description": "one\ntwo"}).want(t, 400, "bad_request")
	if !strings.Contains(bad.str("error"), "description") {
		t.Errorf("refusal %q does not name the description", bad.str("error"))
	}
	if s.a.do("GET", "/api/v1/keys", nil).want(t, 200, "").decode(t, &list); len(list.Keys) != 1 {
		t.Errorf("%d keys after the refused one, want 1", len(list.Keys))
	}
}
