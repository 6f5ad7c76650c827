package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"tsconnect/console/api"
	"tsconnect/control"
)

// auditEventOf is e as the API shows it.
func auditEventOf(e control.AuthEvent) api.AuditEvent {
	out := api.AuditEvent{ID: e.ID, Time: wireTime(e.Time), User: e.User, Method: string(e.Method), Kind: string(e.Kind), OK: e.OK, Detail: e.Detail}
	if x := e.SSH; x != nil {
		out.SSH = &api.AuditSSH{SrcNode: x.SrcNode, SrcName: x.SrcName, SrcTagged: x.SrcTagged, DstNode: x.DstNode, DstName: x.DstName,
			Remote: x.Remote, SSHUser: x.SSHUser, LocalUser: x.LocalUser, Rule: x.Rule, Recording: x.Recording,
			ExitCode: x.ExitCode, DurationMs: x.DurationMs, Session: x.Session, Reported: wireTime(x.Reported)}
	}
	return out
}

// auditExport serves GET /audit/export: the audit log as JSON lines, oldest first, from
// after the event ?after=ID and from the time ?since=RFC3339 on.
func (c *Console) auditExport(w http.ResponseWriter, r *http.Request, p *caller) {
	q := r.URL.Query()
	var after int64
	var since time.Time
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("bad after %q: want an event id", v))
			return
		}
		after = n
	}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("bad since %q: want an RFC 3339 time", v))
			return
		}
		since = t
	}
	enc := json.NewEncoder(w)
	started := false
	start := func() {
		if !started {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.WriteHeader(http.StatusOK)
			started = true
		}
	}
	err := c.srv.AuditExport(r.Context(), after, since, func(e control.AuthEvent) error {
		start()
		return enc.Encode(auditEventOf(e))
	})
	switch {
	case err != nil && !started:
		c.writeErr(w, r, err)
	case err != nil:
		c.logf("console: %s: audit export cut off: %v", p.name(), err) // the client sees a short body
	default:
		start() // an empty log: 200 and no lines
	}
}
