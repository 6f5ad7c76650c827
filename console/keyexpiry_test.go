package console

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"tsconnect/console/api"
	"tsconnect/control"
)

// TestKeyExpiryAPI: an admin reads and sets the network's node-key lifetime (out-of-range
// values refused naming the range, the old lifetime kept), and disables and enables again
// a node's key expiry; the node's JSON says so.
func TestKeyExpiryAPI(t *testing.T) {
	e := newEnv(t)
	admin := e.user("ada@example.com", control.RoleAdmin, "correct horse")
	a := e.client().mustLogin("ada@example.com", "correct horse")
	_, _, node := e.register(control.AuthKeyOptions{User: admin.ID}, hostinfo("web"))
	id := strconv.FormatInt(node.ID, 10)

	var ke api.NodeKeyExpiry
	a.do("GET", "/api/v1/settings/node-key-expiry", nil).want(t, http.StatusOK, "").decode(t, &ke)
	if ke.Seconds != 180*24*3600 {
		t.Errorf("default lifetime %d s, want 180 days", ke.Seconds)
	}
	for _, bad := range []int64{0, 4, 3651 * 24 * 3600} {
		r := a.do("PUT", "/api/v1/settings/node-key-expiry", map[string]any{"seconds": bad}).want(t, http.StatusBadRequest, "bad_request")
		if want := "want a node-key lifetime in [5, 315360000]"; !strings.Contains(r.str("error"), want) {
			t.Errorf("%d s: error %q, want it to say %q", bad, r.str("error"), want)
		}
	}
	a.do("PUT", "/api/v1/settings/node-key-expiry", map[string]any{"seconds": 3600}).want(t, http.StatusOK, "")
	a.do("GET", "/api/v1/settings/node-key-expiry", nil).want(t, http.StatusOK, "").decode(t, &ke)
	if ke.Seconds != 3600 {
		t.Errorf("lifetime %d s after setting 3600", ke.Seconds)
	}

	var n api.Node
	a.do("PUT", "/api/v1/nodes/"+id+"/key-expiry", map[string]any{"disabled": true}).want(t, http.StatusOK, "").decode(t, &n)
	if !n.KeyExpiryDisabled || n.KeyExpiry != nil || n.KeyExpired {
		t.Errorf("after disabling: %+v", n)
	}
	a.do("PUT", "/api/v1/nodes/"+id+"/key-expiry", map[string]any{"disabled": false}).want(t, http.StatusOK, "").decode(t, &n)
	if n.KeyExpiryDisabled || n.KeyExpiry == nil || n.KeyExpired {
		t.Errorf("after enabling: %+v", n)
	}
	a.do("PUT", "/api/v1/nodes/999/key-expiry", map[string]any{"disabled": true}).want(t, http.StatusNotFound, "")
}
