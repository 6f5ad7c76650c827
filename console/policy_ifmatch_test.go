package console

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"tsconnect/console/api"
	"tsconnect/control"
	"tsconnect/control/adminclient"
)

const (
	policyA = `{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:22"]}]}`
	policyB = `{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:80"]}]}`
)

// TestPolicyIfMatchRace: two editors read the same version; the first write wins, the
// second gets 412 naming the version in force, and the first's text stays in force. Raced
// at once, exactly one of two writers against one version wins.
func TestPolicyIfMatchRace(t *testing.T) {
	e := newEnv(t)
	sock := e.socket()
	ctx := context.Background()
	e.user("ada@example.com", control.RoleAdmin, "admin password")
	browser := e.client().mustLogin("ada@example.com", "admin password")

	read := browser.do("GET", "/api/v1/policy", nil).want(t, http.StatusOK, "")
	v := int64(read.body["version"].(float64))
	if read.header.Get("ETag") != `"`+strconv.FormatInt(v, 10)+`"` {
		t.Fatalf("ETag %q for version %d", read.header.Get("ETag"), v)
	}
	// The CLI (socket) writes first, against the version both read.
	first, err := sock.SetPolicy(ctx, []byte(policyA), "cli", v)
	if err != nil || first.Version != v+1 {
		t.Fatalf("first writer: %+v %v", first, err)
	}
	// The browser's write against the same version is refused and writes nothing.
	stale := browser.do("PUT", "/api/v1/policy", map[string]string{"text": policyB}, "If-Match", read.header.Get("ETag")).
		want(t, http.StatusPreconditionFailed, api.CodeStaleVersion)
	if stale.body["currentVersion"] != float64(v+1) || !strings.Contains(stale.str("error"), "version "+strconv.FormatInt(v+1, 10)) {
		t.Fatalf("412 %s: want it to name version %d", stale.raw, v+1)
	}
	if pv, _ := sock.Policy(ctx); pv.Version != v+1 || pv.Text != policyA {
		t.Fatalf("in force after the stale write: %+v; want the first writer's", pv)
	}
	// Without If-Match: 428, nothing written; "*" writes whatever is in force.
	browser.do("PUT", "/api/v1/policy", map[string]string{"text": policyB}).want(t, http.StatusPreconditionRequired, api.CodeIfMatchRequired)
	browser.do("PUT", "/api/v1/policy", map[string]string{"text": policyB}, "If-Match", "seven").want(t, http.StatusBadRequest, api.CodeBadRequest)
	// A restore is a write too.
	_, err = sock.RestorePolicy(ctx, 0, "cli", v)
	if ae := wantAPIError(t, err, http.StatusPreconditionFailed, api.CodeStaleVersion); ae.CurrentVersion != v+1 {
		t.Fatalf("stale restore: %+v", ae)
	}
	browser.do("POST", "/api/v1/policy/versions/1/restore", map[string]string{}).want(t, http.StatusPreconditionRequired, api.CodeIfMatchRequired)
	if r, err := sock.RestorePolicy(ctx, 0, "cli", v+1); err != nil || r.Version != v+2 || r.Note != "restore of version 0" {
		t.Fatalf("restore against the version in force: %+v %v", r, err)
	}
	if hs, err := sock.PolicyHistory(ctx); err != nil || len(hs) != int(v+2) || hs[len(hs)-1].Text != "" {
		t.Fatalf("history: %+v %v", hs, err)
	}

	// Two writers at once against one version: one wins, the other is told.
	cur, _ := sock.Policy(ctx)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, text := range []string{policyA, policyB} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = sock.SetPolicy(ctx, []byte(text), "racer", cur.Version)
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
		} else if ae, ok := err.(*adminclient.Error); !ok || ae.Code != api.CodeStaleVersion {
			t.Fatalf("loser: %v; want stale_version", err)
		}
	}
	after, _ := sock.Policy(ctx)
	if won != 1 || after.Version != cur.Version+1 {
		t.Fatalf("%d writers won, version %d → %d; want exactly one", won, cur.Version, after.Version)
	}
}
