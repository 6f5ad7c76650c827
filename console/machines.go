package console

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"tsconnect/control"
	"tsconnect/policy/rules"
)

// userRef names a user briefly.
type userRef struct {
	ID    int64  `json:"id"`
	Email string `json:"email"`
}

// machineJSON is a node as the console shows it. Node-supplied strings (name, OS, tags)
// are passed as they are: the front end escapes them.
type machineJSON struct {
	ID        int64    `json:"id"`
	Name      string   `json:"name"`
	Addresses []string `json:"addresses"`
	OS        string   `json:"os"`
	Owner     *userRef `json:"owner"` // null when tagged
	Tags      []string `json:"tags"`
	SSH       bool     `json:"ssh"`
	Online    bool     `json:"online"`
	LastSeen  *string  `json:"lastSeen"`
	Ephemeral bool     `json:"ephemeral"`
	Expired   bool     `json:"expired"`
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func machineOf(ns control.NodeState, users map[int64]string) machineJSON {
	n := ns.Node
	m := machineJSON{ID: n.ID, Name: n.Name, Addresses: []string{}, OS: n.OS, Tags: nonNil(n.Tags),
		SSH: n.SSH, Online: n.Online, Ephemeral: n.Ephemeral, Expired: ns.Expired}
	for _, a := range n.Addresses {
		m.Addresses = append(m.Addresses, a.Addr().String())
	}
	if len(n.Tags) == 0 && n.User != 0 {
		m.Owner = &userRef{ID: n.User, Email: users[n.User]}
	}
	if !n.LastSeen.IsZero() {
		s := rfc3339(n.LastSeen)
		m.LastSeen = &s
	}
	return m
}

// userEmails maps user IDs to emails.
func (c *Console) userEmails(ctx context.Context) (map[int64]string, error) {
	us, err := c.srv.Users(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[int64]string, len(us))
	for _, u := range us {
		m[u.ID] = u.Email
	}
	return m, nil
}

// machineList is every machine, by ID.
func (c *Console) machineList(ctx context.Context) ([]machineJSON, error) {
	ns, err := c.srv.NodeStates(ctx)
	if err != nil {
		return nil, err
	}
	users, err := c.userEmails(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]machineJSON, 0, len(ns))
	for _, n := range ns {
		out = append(out, machineOf(n, users))
	}
	return out, nil
}

func (c *Console) machine(ctx context.Context, id int64) (machineJSON, error) {
	ns, err := c.srv.NodeState(ctx, id)
	if err != nil {
		return machineJSON{}, err
	}
	users, err := c.userEmails(ctx)
	if err != nil {
		return machineJSON{}, err
	}
	return machineOf(ns, users), nil
}

type machinesJSON struct {
	Type     string        `json:"type,omitempty"` // "machines" on the events WebSocket
	Machines []machineJSON `json:"machines"`
}

// machines lists every machine: members see them all; what they may do differs.
func (c *Console) machines(w http.ResponseWriter, r *http.Request, _ *session) {
	ms, err := c.machineList(r.Context())
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, machinesJSON{Machines: ms})
}

type sshUserJSON struct {
	Name   string       `json:"name"`
	Action rules.Action `json:"action"`
}

type sshUsersJSON struct {
	Users  []sshUserJSON `json:"users"`
	Reason string        `json:"reason,omitempty"`
}

// sshUsers lists the local users the caller may log in as on the machine, exactly as the
// policy gives them for an untagged node of theirs (the session's browser node).
func (c *Console) sshUsers(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	m, err := c.machine(r.Context(), id)
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	logins, err := c.srv.SSHLoginsFor(r.Context(), s.User.ID, id)
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	out := sshUsersJSON{Users: []sshUserJSON{}}
	for _, l := range logins {
		out.Users = append(out.Users, sshUserJSON{Name: l.User, Action: l.Action})
	}
	if len(out.Users) == 0 {
		out.Reason = noLoginReason(s.User.Email, m)
	}
	writeJSON(w, http.StatusOK, out)
}

// noLoginReason says, in a sentence, why user has no SSH login on m.
func noLoginReason(user string, m machineJSON) string {
	who := machineLabel(m)
	if m.Expired {
		return fmt.Sprintf("%s is expired: it must register again before anyone can reach it.", who)
	}
	return fmt.Sprintf("The access policy gives %s no SSH login on %s: no ssh rule has %s (or a group of theirs) as source and this machine as destination, or the acls do not let them reach its port 22.", user, who, user)
}

// machineLabel names m with its owner or tags, so a look-alike name cannot pass for another.
func machineLabel(m machineJSON) string {
	switch {
	case len(m.Tags) > 0:
		return fmt.Sprintf("%s (%s)", m.Name, strings.Join(m.Tags, ", "))
	case m.Owner != nil:
		return fmt.Sprintf("%s (%s)", m.Name, m.Owner.Email)
	}
	return m.Name
}

type sessionRequest struct {
	User string `json:"user"`
}

type sessionJSON struct {
	AuthKey    string `json:"authKey"`
	ControlURL string `json:"controlURL"`
	Host       string `json:"host"`
	User       string `json:"user"`
	Expires    string `json:"expires"`
}

// newSession mints the auth key for an SSH session from the browser to the machine as a
// local user the policy allows: single-use, ephemeral, untagged, the caller's, 5 minutes.
func (c *Console) newSession(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var req sessionRequest
	if !readJSON(w, r, &req) {
		return
	}
	m, err := c.machine(r.Context(), id)
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	logins, err := c.srv.SSHLoginsFor(r.Context(), s.User.ID, id)
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	if !control.LoginAllowed(logins, req.User) {
		msg := fmt.Sprintf("%s may not log in as %q on %s", s.User.Email, req.User, machineLabel(m))
		if len(logins) == 0 {
			msg = noLoginReason(s.User.Email, m)
		}
		writeError(w, http.StatusForbidden, codeNotAllowed, msg)
		return
	}
	secret, info, err := c.srv.CreateSessionKey(r.Context(), s.User.ID)
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	c.logf("console: %s: session key %d (%s) for %s on node %d", s.User.Email, info.ID, info.Prefix, req.User, id)
	writeJSON(w, http.StatusCreated, sessionJSON{AuthKey: secret, ControlURL: c.o.ServerURL, Host: m.Name,
		User: req.User, Expires: rfc3339(info.Expires)})
}

func (c *Console) deleteMachine(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if err := c.srv.DeleteNode(r.Context(), id); err != nil {
		c.writeErr(w, r, err)
		return
	}
	c.logf("console: %s deleted node %d", s.User.Email, id)
	w.WriteHeader(http.StatusNoContent)
}

type tagsRequest struct {
	Tags []string `json:"tags"`
	// Owner is the user who owns the machine when the tags are removed from a tagged one;
	// 0 means the caller.
	Owner int64 `json:"owner,omitempty"`
}

func (c *Console) setTags(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var req tagsRequest
	if !readJSON(w, r, &req) {
		return
	}
	var tags []string
	for _, t := range req.Tags {
		if t = strings.TrimSpace(t); t != "" {
			tags = append(tags, t)
		}
	}
	cur, err := c.srv.NodeState(r.Context(), id)
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	if err := c.srv.CheckTagOwnership(r.Context(), s.User.ID, symmetricDiff(cur.Node.Tags, tags)); err != nil {
		c.writeErr(w, r, err)
		return
	}
	o := control.TagNodeOptions{By: s.User.ID}
	if len(tags) == 0 && len(cur.Node.Tags) > 0 {
		o.User = req.Owner
		if o.User == 0 {
			o.User = s.User.ID
		}
	}
	if _, err := c.srv.SetNodeTags(r.Context(), id, tags, o); err != nil {
		c.writeErr(w, r, err)
		return
	}
	c.logf("console: %s set the tags of node %d to %v", s.User.Email, id, tags)
	c.writeMachine(w, r, id)
}

// symmetricDiff returns the tags in exactly one of a and b: those a change adds or removes.
func symmetricDiff(a, b []string) []string {
	var out []string
	for _, t := range a {
		if !slices.Contains(b, t) {
			out = append(out, t)
		}
	}
	for _, t := range b {
		if !slices.Contains(a, t) {
			out = append(out, t)
		}
	}
	return out
}

func (c *Console) expireMachine(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if _, err := c.srv.ExpireNode(r.Context(), id); err != nil {
		c.writeErr(w, r, err)
		return
	}
	c.logf("console: %s expired node %d", s.User.Email, id)
	c.writeMachine(w, r, id)
}

func (c *Console) writeMachine(w http.ResponseWriter, r *http.Request, id int64) {
	m, err := c.machine(r.Context(), id)
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}
