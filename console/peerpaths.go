package console

import (
	"fmt"
	"net/http"
	"net/netip"

	"tsconnect/console/api"
	"tsconnect/control"
	"tsconnect/controlws"
)

// apiPath is a path an agent reported as the API shows it: the direct endpoint, or else the
// relay region, with the last round trip.
func apiPath(p controlws.LoginPath) api.SSHPath {
	if p.Direct.IsValid() {
		return api.SSHPath{Direct: p.Direct.String(), RTTMs: p.RTTMillis}
	}
	return api.SSHPath{Region: p.RegionCode, RTTMs: p.RTTMillis}
}

// peerPaths answers GET /nodes/{id}/paths: machine id's paths to the peers it exchanged
// traffic with in the last 30 s, as its agent last reported, each peer named by its machine.
// A member sees those of the machines they own (as GET /sessions shows them the logins from
// their machines), an admin every machine's.
func (c *Console) peerPaths(w http.ResponseWriter, r *http.Request, s *caller) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	states, err := c.srv.NodeStates(r.Context())
	if err != nil {
		c.writeErr(w, r, err)
		return
	}
	var target *control.NodeState
	byAddr := map[netip.Addr]control.NodeState{}
	for i, ns := range states {
		if ns.Node.ID == id {
			target = &states[i]
		}
		for _, a := range ns.Node.Addresses {
			byAddr[a.Addr()] = ns
		}
	}
	if target == nil {
		c.writeErr(w, r, fmt.Errorf("no machine %d: %w", id, control.ErrNotFound))
		return
	}
	owned := len(target.Node.Tags) == 0 && target.Node.User != 0 && target.Node.User == s.User.ID
	if s.User.Role != control.RoleAdmin && !owned {
		writeError(w, http.StatusForbidden, codeForbidden, "only an admin or the machine's owner may see its paths")
		return
	}
	out := api.PeerPathList{Paths: []api.PeerPath{}}
	for _, p := range c.srv.PeerPaths(id) {
		x := api.PeerPath{Peer: p.Peer.String(), SSHPath: apiPath(p.LoginPath)}
		if ns, ok := byAddr[p.Peer]; ok {
			x.Machine = &api.NodeRef{ID: ns.Node.ID, Name: ns.Node.Name}
		}
		out.Paths = append(out.Paths, x)
	}
	writeJSON(w, http.StatusOK, out)
}
