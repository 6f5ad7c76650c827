package console

import (
	"fmt"
	"net/http"
	"time"

	"tsconnect/console/api"
	"tsconnect/control"
)

// setNodeKeyExpiry disables or enables again the expiry of a node's key (admins).
func (c *Console) setNodeKeyExpiry(w http.ResponseWriter, r *http.Request, s *caller) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var req api.SetKeyExpiryRequest
	if !readJSON(w, r, &req) {
		return
	}
	if _, err := c.srv.SetNodeKeyExpiryDisabled(r.Context(), id, req.Disabled); err != nil {
		c.writeErr(w, r, err)
		return
	}
	c.logf("console: %s set key expiry of node %d disabled=%v", s.name(), id, req.Disabled)
	c.writeNode(w, r, id)
}

// nodeKeyExpiry answers the network's node-key lifetime.
func (c *Console) nodeKeyExpiry(w http.ResponseWriter, r *http.Request, _ *caller) {
	d, err := c.srv.NodeKeyExpiry(r.Context())
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.NodeKeyExpiry{Seconds: int64(d / time.Second)})
}

// setNetworkKeyExpiry sets the network's node-key lifetime (admins); it applies from each
// node's next authentication.
func (c *Console) setNetworkKeyExpiry(w http.ResponseWriter, r *http.Request, s *caller) {
	var req api.NodeKeyExpiry
	if !readJSON(w, r, &req) {
		return
	}
	lo, hi := int64(control.MinNodeKeyExpiry/time.Second), int64(control.MaxNodeKeyExpiry/time.Second)
	if req.Seconds < lo || req.Seconds > hi {
		writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("seconds %d: want a node-key lifetime in [%d, %d]", req.Seconds, lo, hi))
		return
	}
	if err := c.srv.SetNodeKeyExpiry(r.Context(), time.Duration(req.Seconds)*time.Second); err != nil {
		c.writeErr(w, r, err)
		return
	}
	c.logf("console: %s set the node-key lifetime to %ds", s.name(), req.Seconds)
	writeJSON(w, http.StatusOK, req)
}
