package console

import (
	"net/http"
	"net/netip"
	"strconv"

	"tsconnect/console/api"
	"tsconnect/control"
	"tsconnect/internal/safetext"
)

// sshSessions answers GET /sessions: the live SSH logins the agents report, each with its
// machine, the machine and user it comes from (found by its overlay address), the local
// account, start and bytes. A member sees the logins from machines they own; an admin all.
func (c *Console) sshSessions(w http.ResponseWriter, r *http.Request, s *caller) {
	states, err := c.srv.NodeStates(r.Context())
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	users, err := c.userEmails(r.Context())
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	byID := map[int64]control.NodeState{}
	byAddr := map[netip.Addr]control.NodeState{}
	for _, ns := range states {
		byID[ns.Node.ID] = ns
		for _, a := range ns.Node.Addresses {
			byAddr[a.Addr()] = ns
		}
	}
	out := api.SSHSessionList{Sessions: []api.SSHSession{}}
	for _, l := range c.srv.LiveSSHLogins() {
		target, ok := byID[l.Node]
		if !ok {
			continue
		}
		x := api.SSHSession{Machine: api.NodeRef{ID: target.Node.ID, Name: target.Node.Name}, Remote: l.Login.Remote.String(),
			LocalUser: l.Login.LocalUser, Started: wireTime(l.Login.Started), Channels: l.Login.Sessions,
			BytesIn: l.Login.BytesIn, BytesOut: l.Login.BytesOut}
		if p := l.Login.Path; p != nil {
			ap := apiPath(*p)
			x.Path = &ap
		}
		var owner int64
		if src, ok := byAddr[l.Login.Remote.Addr()]; ok {
			x.From = &api.NodeRef{ID: src.Node.ID, Name: src.Node.Name}
			if len(src.Node.Tags) == 0 && src.Node.User != 0 {
				owner = src.Node.User
				x.User = &api.UserRef{ID: owner, Email: users[owner]}
			}
		}
		if s.User.Role != control.RoleAdmin && (owner == 0 || owner != s.User.ID) {
			continue
		}
		out.Sessions = append(out.Sessions, x)
	}
	writeJSON(w, http.StatusOK, out)
}

// endSSHSession answers DELETE /sessions/{id}/{remote}: the agent of machine id ends its
// login from remote at once, telling its client who ended it.
func (c *Console) endSSHSession(w http.ResponseWriter, r *http.Request, s *caller) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	remote, err := netip.ParseAddrPort(r.PathValue("remote"))
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, "bad remote "+strconv.Quote(safetext.Bounded(r.PathValue("remote"), 64))+": want ADDRESS:PORT")
		return
	}
	who := s.User.Email
	if who == "" {
		who = s.name()
	}
	if err := c.srv.EndSSH(id, remote, who); err != nil {
		c.writeErr(w, r, err)
		return
	}
	c.logf("console: %s ended the SSH login from %s on node %d", s.name(), remote, id)
	w.WriteHeader(http.StatusNoContent)
}
