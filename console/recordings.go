package console

import (
	"net"
	"net/http"
	"strconv"

	"tsconnect/console/api"
	"tsconnect/policy/rules"
)

// recordingsLaunch mints what the Recordings page reads recordings with: the caller's key
// for a browser node of theirs and the recorder nodes' overlay addresses. Recordings never
// pass through control: the page's node reads them from the recorders over the overlay,
// and each recorder asks control again whether the node's owner may view.
func (c *Console) recordingsLaunch(w http.ResponseWriter, r *http.Request, s *caller) {
	if !callerUser(w, s) {
		return
	}
	ok, reason, err := c.srv.RecordingViewer(r.Context(), s.User.ID)
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	if !ok {
		writeError(w, http.StatusForbidden, codeNotAllowed, reason)
		return
	}
	recs := []api.Recorder{}
	for _, n := range c.srv.RecorderNodes() {
		recs = append(recs, api.Recorder{Name: n.Name, Address: net.JoinHostPort(n.Address.String(), strconv.Itoa(rules.RecorderPort))})
	}
	secret, info, err := c.srv.CreateSSHLaunchKey(r.Context(), s.User.ID)
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	c.logf("console: %s: recordings launch key %d (%s), %d recorders", s.name(), info.ID, info.Prefix, len(recs))
	writeJSON(w, http.StatusCreated, api.RecordingsLaunch{AuthKey: secret, ControlURL: c.o.ServerURL,
		Expires: wireTime(info.Expires), Recorders: recs})
}
