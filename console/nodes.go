package console

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"tsconnect/console/api"
	"tsconnect/control"
	"tsconnect/internal/safetext"
	"tsconnect/policy"
)

// wireTime is t as the API sends it: UTC, whole seconds.
func wireTime(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

func nodeOf(ns control.NodeState, users map[int64]string) api.Node {
	n := ns.Node
	m := api.Node{ID: n.ID, Name: n.Name, Hostname: n.Hostname, Key: n.Key.String(), Addresses: []string{}, OS: n.OS, Tags: nonNil(n.Tags),
		SSH: n.SSH, SSHTools: nonNil(n.SSHTools), VNC: n.VNC, Online: n.Online, Ephemeral: n.Ephemeral, Expired: ns.Expired,
		KeyExpired: ns.KeyExpired, KeyExpiryDisabled: ns.KeyExpiryDisabled}
	if !n.KeyExpiry.IsZero() {
		t := wireTime(n.KeyExpiry)
		m.KeyExpiry = &t
	}
	for _, a := range n.Addresses {
		m.Addresses = append(m.Addresses, a.Addr().String())
	}
	if len(n.Tags) == 0 && n.User != 0 {
		m.Owner = &api.UserRef{ID: n.User, Email: users[n.User]}
	}
	if !n.LastSeen.IsZero() {
		t := wireTime(n.LastSeen)
		m.LastSeen = &t
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

// nodeList is every node, by ID.
func (c *Console) nodeList(ctx context.Context) ([]api.Node, error) {
	ns, err := c.srv.NodeStates(ctx)
	if err != nil {
		return nil, err
	}
	users, err := c.userEmails(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.Node, 0, len(ns))
	for _, n := range ns {
		out = append(out, nodeOf(n, users))
	}
	return out, nil
}

func (c *Console) node(ctx context.Context, id int64) (api.Node, error) {
	ns, err := c.srv.NodeState(ctx, id)
	if err != nil {
		return api.Node{}, err
	}
	users, err := c.userEmails(ctx)
	if err != nil {
		return api.Node{}, err
	}
	return nodeOf(ns, users), nil
}

// maxNodeQuery bounds GET /nodes' q parameter.
const maxNodeQuery = 256

// nodes lists the nodes by ID: members see them all; what they may do differs.
// ?q=TEXT keeps those whose name, hostname, owner, tags, addresses or OS contain TEXT
// (any case); ?limit=N (1 to 1000) gives a page of at most N, ?after=ID the page after ID.
func (c *Console) nodes(w http.ResponseWriter, r *http.Request, s *caller) {
	q := r.URL.Query()
	limit, after := 0, int64(0)
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 1000 {
			writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("bad limit %q: want 1 to 1000", safetext.Bounded(v, 32)))
			return
		}
		limit = n
	}
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("bad after %q: want a node id", safetext.Bounded(v, 32)))
			return
		}
		after = n
	}
	text := q.Get("q")
	if len(text) > maxNodeQuery {
		writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("q of %d bytes, over the limit of %d", len(text), maxNodeQuery))
		return
	}
	ns, err := c.nodeList(r.Context())
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	out := api.NodeList{Nodes: []api.Node{}}
	text = strings.ToLower(text)
	for _, n := range ns {
		if text != "" && !nodeMatches(n, text) {
			continue
		}
		out.Total++
		if n.ID <= after {
			continue
		}
		if limit > 0 && len(out.Nodes) == limit {
			out.Next = out.Nodes[limit-1].ID
			continue
		}
		if n.VNC && s.via != viaSocket {
			ok, err := c.srv.ReachesTCP(r.Context(), s.User.ID, n.ID, vncPort)
			if err != nil {
				c.writeErr(w, r, err)
				return
			}
			n.VNCAllowed = ok
		}
		out.Nodes = append(out.Nodes, n)
	}
	writeJSON(w, http.StatusOK, out)
}

// vncPort is the overlay port a machine's VNC forward listens on (agent.VNCPort).
const vncPort = 5900

// vncLaunch mints a VNC launch: the auth key for one browser VNC session to the node, when it
// forwards VNC and the acls let the caller reach its port 5900: single-use, ephemeral,
// untagged, the caller's, 5 minutes (as an SSH launch's).
func (c *Console) vncLaunch(w http.ResponseWriter, r *http.Request, s *caller) {
	id, ok := pathID(w, r)
	if !ok || !callerUser(w, s) {
		return
	}
	m, err := c.node(r.Context(), id)
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	allowed, err := c.srv.ReachesTCP(r.Context(), s.User.ID, id, vncPort)
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	switch {
	case !m.VNC:
		writeError(w, http.StatusForbidden, codeNotAllowed, fmt.Sprintf("%s does not forward VNC (tsconnect up --vnc)", machineLabel(m)))
		return
	case !allowed:
		writeError(w, http.StatusForbidden, codeNotAllowed, fmt.Sprintf("The access policy does not let %s reach port %d of %s: no acls rule has them (or a group of theirs) as source and this machine's port %d as destination.", s.User.Email, vncPort, machineLabel(m), vncPort))
		return
	}
	secret, info, err := c.srv.CreateSSHLaunchKey(r.Context(), s.User.ID)
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	c.logf("console: %s: VNC launch key %d (%s) for node %d", s.name(), info.ID, info.Prefix, m.ID)
	writeJSON(w, http.StatusCreated, api.VNCLaunch{AuthKey: secret, ControlURL: c.o.ServerURL, Host: m.Name, Expires: wireTime(info.Expires)})
}

// nodeMatches reports whether one of n's names, owner, tags, addresses or OS contains
// text, which is lower case.
func nodeMatches(n api.Node, text string) bool {
	fields := append([]string{n.Name, n.Hostname, n.OS}, n.Tags...)
	fields = append(fields, n.Addresses...)
	if n.Owner != nil {
		fields = append(fields, n.Owner.Email)
	}
	for _, f := range fields {
		if strings.Contains(strings.ToLower(f), text) {
			return true
		}
	}
	return false
}

// callerUser is the user whose SSH logins a caller asks about; the local admin has none.
func callerUser(w http.ResponseWriter, p *caller) bool {
	if p.via == viaSocket {
		writeError(w, http.StatusBadRequest, codeBadRequest, "the local admin is no user of the network: SSH logins are a user's (sign in or use a user's API token)")
		return false
	}
	return true
}

// sshUsers lists the local users the caller may log in as on the node, exactly as the
// policy gives them for an untagged node of theirs (an SSH launch's browser node).
func (c *Console) sshUsers(w http.ResponseWriter, r *http.Request, s *caller) {
	m, logins, ok := c.loginsOn(w, r, s)
	if !ok {
		return
	}
	out := api.SSHUsers{Users: []api.SSHUser{}}
	for _, l := range logins {
		out.Users = append(out.Users, api.SSHUser{Name: l.User, Action: string(l.Action)})
	}
	if len(out.Users) == 0 {
		out.Reason = noLoginReason(s.User.Email, m)
	}
	writeJSON(w, http.StatusOK, out)
}

// loginsOn finds the path's node and the SSH logins the policy gives the caller on it, or
// answers the request (400, 404, …) and returns false.
func (c *Console) loginsOn(w http.ResponseWriter, r *http.Request, s *caller) (api.Node, []policy.Login, bool) {
	id, ok := pathID(w, r)
	if !ok || !callerUser(w, s) {
		return api.Node{}, nil, false
	}
	m, err := c.node(r.Context(), id)
	if err != nil {
		c.writeErr(w, r, err)
		return api.Node{}, nil, false
	}
	logins, err := c.srv.SSHLoginsFor(r.Context(), s.User.ID, id)
	if err != nil {
		c.writeErr(w, r, err)
		return api.Node{}, nil, false
	}
	return m, logins, true
}

// noLoginReason says, in a sentence, why user has no SSH login on m.
func noLoginReason(user string, m api.Node) string {
	who := machineLabel(m)
	if m.Expired {
		return fmt.Sprintf("%s is expired: it must register again before anyone can reach it.", who)
	}
	return fmt.Sprintf("The access policy gives %s no SSH login on %s: no ssh rule has %s (or a group of theirs) as source and this machine as destination, or the acls do not let them reach its port 22.", user, who, user)
}

// machineLabel names m with its owner or tags, so a look-alike name cannot pass for another.
func machineLabel(m api.Node) string {
	switch {
	case len(m.Tags) > 0:
		return fmt.Sprintf("%s (%s)", m.Name, strings.Join(m.Tags, ", "))
	case m.Owner != nil:
		return fmt.Sprintf("%s (%s)", m.Name, m.Owner.Email)
	}
	return m.Name
}

// sshLaunch mints an SSH launch: the auth key for one SSH session from the browser to the
// node as a local user the policy allows: single-use, ephemeral, untagged, the caller's,
// 5 minutes.
func (c *Console) sshLaunch(w http.ResponseWriter, r *http.Request, s *caller) {
	if _, ok := pathID(w, r); !ok || !callerUser(w, s) {
		return
	}
	var req api.SSHLaunchRequest
	if !readJSON(w, r, &req) {
		return
	}
	m, logins, ok := c.loginsOn(w, r, s)
	if !ok {
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
	secret, info, err := c.srv.CreateSSHLaunchKey(r.Context(), s.User.ID)
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	c.logf("console: %s: SSH launch key %d (%s) for %s on node %d", s.name(), info.ID, info.Prefix, req.User, m.ID)
	writeJSON(w, http.StatusCreated, api.SSHLaunch{AuthKey: secret, ControlURL: c.o.ServerURL, Host: m.Name,
		User: req.User, Expires: wireTime(info.Expires)})
}

func (c *Console) deleteNode(w http.ResponseWriter, r *http.Request, s *caller) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if err := c.srv.DeleteNode(r.Context(), id); err != nil {
		c.writeErr(w, r, err)
		return
	}
	c.logf("console: %s deleted node %d", s.name(), id)
	w.WriteHeader(http.StatusNoContent)
}

// setTags retags a node. A sign-in or token changes only tags its user owns (admins any);
// an admin may act for another user (By), whose ownership SetNodeTags then checks.
func (c *Console) setTags(w http.ResponseWriter, r *http.Request, s *caller) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var req api.SetTagsRequest
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
	o := control.TagNodeOptions{By: s.User.ID}
	if req.By != "" {
		u, err := c.lookupUser(r.Context(), string(req.By))
		if err != nil {
			c.writeErr(w, r, err)
			return
		}
		o.By = u.ID
	} else if s.via != viaSocket {
		if err := c.srv.CheckTagOwnership(r.Context(), s.User.ID, control.ChangedTags(cur.Node.Tags, tags)); err != nil {
			c.writeErr(w, r, err)
			return
		}
	}
	if len(tags) == 0 && len(cur.Node.Tags) > 0 {
		o.User = s.User.ID
		if req.Owner != "" {
			u, err := c.lookupUser(r.Context(), string(req.Owner))
			if err != nil {
				c.writeErr(w, r, err)
				return
			}
			o.User = u.ID
		}
	}
	if _, err := c.srv.SetNodeTags(r.Context(), id, tags, o); err != nil {
		c.writeErr(w, r, err)
		return
	}
	c.logf("console: %s set the tags of node %d to %v", s.name(), id, tags)
	c.writeNode(w, r, id)
}

func (c *Console) expireNode(w http.ResponseWriter, r *http.Request, s *caller) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if _, err := c.srv.ExpireNode(r.Context(), id); err != nil {
		c.writeErr(w, r, err)
		return
	}
	c.logf("console: %s expired node %d", s.name(), id)
	c.writeNode(w, r, id)
}

func (c *Console) writeNode(w http.ResponseWriter, r *http.Request, id int64) {
	m, err := c.node(r.Context(), id)
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}
