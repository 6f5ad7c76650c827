package control

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"tsconnect/controlws"
	"tsconnect/internal/safetext"
)

// Live SSH logins and paths to peers, as the agents report them (TypeSSHSessions): the last report of each node
// and the report whose answer control holds, so that an admin's "end" reaches the agent at
// once. Kept in memory on the replica the node is connected to; a node reports again on
// every connection.

// ErrNoSuchLogin is returned by EndSSH for a login its node does not report.
var ErrNoSuchLogin = fmt.Errorf("%w: no such SSH login", ErrNotFound)

// ErrNodeNotListening is returned by EndSSH when the node holds no report open here (it is
// offline, connected to another replica, or predates the message).
var ErrNodeNotListening = fmt.Errorf("%w: the machine is not connected to this control server", ErrBusy)

// LiveSSH is one live SSH login on a node: the node it runs on and what its agent reported.
type LiveSSH struct {
	Node  int64
	Login controlws.SSHLogin
}

// sshLogins holds the reports.
type sshLogins struct {
	mu     sync.Mutex
	byNode map[int64]*nodeLogins
}

// nodeLogins is one node's last report and its held answer.
type nodeLogins struct {
	logins []controlws.SSHLogin
	peers  []controlws.PeerPath // its paths to the peers it exchanged traffic with
	conn   *nodeConn            // the connection that reported them
	nc     *nodeConn            // conn while its answer is held, nil once sent
	reqID  uint64
	timer  *time.Timer
	end    []controlws.EndSSH
}

// sshSessions serves a TypeSSHSessions: it records the report and holds its answer.
func (nc *nodeConn) sshSessions(env *controlws.Envelope) (string, any, error) {
	var r controlws.SSHSessions
	if err := json.Unmarshal(env.Body, &r); err != nil {
		return "", nil, errf(controlws.CodeBadRequest, "sshSessions: %v", err)
	}
	if err := r.Validate(); err != nil {
		return "", nil, errf(controlws.CodeBadRequest, "%v", err)
	}
	id := nc.nodeID.Load()
	if id == 0 {
		return "", nil, errf(controlws.CodeNotRegistered, "sshSessions before register or mapRequest on this connection")
	}
	l := &nc.s.sshLogins
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byNode == nil {
		l.byNode = map[int64]*nodeLogins{}
	}
	if old := l.byNode[id]; old != nil {
		old.answerLocked()
	}
	if len(r.Logins) == 0 && len(r.Peers) == 0 {
		delete(l.byNode, id)
		return controlws.TypeSSHSessionsAnswer, &controlws.SSHSessionsAnswer{}, nil
	}
	n := &nodeLogins{logins: r.Logins, peers: r.Peers, conn: nc, nc: nc, reqID: env.ID}
	n.timer = time.AfterFunc(controlws.SSHSessionsHold, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		n.answerLocked()
	})
	l.byNode[id] = n
	// The connection ending drops its node's logins (it reports again on its next connection).
	nc.watchSSH.Do(func() {
		nc.wg.Go(func() {
			select {
			case <-nc.done:
			case <-nc.s.ctx.Done():
			}
			l.mu.Lock()
			defer l.mu.Unlock()
			if n := l.byNode[id]; n != nil && n.conn == nc {
				n.timer.Stop()
				delete(l.byNode, id)
			}
		})
	})
	return "", nil, nil
}

// answerLocked sends the held answer once (with the logins ended meanwhile). l.mu held.
func (n *nodeLogins) answerLocked() {
	if n.nc == nil {
		return
	}
	n.timer.Stop()
	n.nc.reply(n.reqID, controlws.TypeSSHSessionsAnswer, &controlws.SSHSessionsAnswer{End: n.end})
	n.nc, n.end = nil, nil
}

// LiveSSHLogins lists the live SSH logins the nodes connected here report.
func (s *Server) LiveSSHLogins() []LiveSSH {
	l := &s.sshLogins
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []LiveSSH
	for id, n := range l.byNode {
		for _, x := range n.logins {
			out = append(out, LiveSSH{Node: id, Login: x})
		}
	}
	slices.SortFunc(out, func(a, b LiveSSH) int { return a.Login.Started.Compare(b.Login.Started) })
	return out
}

// PeerPaths returns node's paths to the peers it exchanged traffic with, as its last report
// here says (nil when it is connected to another replica, or predates them).
func (s *Server) PeerPaths(node int64) []controlws.PeerPath {
	l := &s.sshLogins
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.byNode[node]; n != nil {
		return slices.Clone(n.peers)
	}
	return nil
}

// EndSSH asks node's agent to end its SSH login from remote, telling its client who ended it
// (by, e.g. an admin's email). The agent cuts it at once; it drops from LiveSSHLogins with
// the agent's next report.
func (s *Server) EndSSH(node int64, remote netip.AddrPort, by string) error {
	l := &s.sshLogins
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.byNode[node]
	if n == nil || !slices.ContainsFunc(n.logins, func(x controlws.SSHLogin) bool { return x.Remote == remote }) {
		return fmt.Errorf("%w from %s on node %d", ErrNoSuchLogin, remote, node)
	}
	if n.nc == nil {
		return ErrNodeNotListening
	}
	n.end = append(n.end, controlws.EndSSH{Remote: remote, By: safetext.Bounded(by, controlws.MaxEndReason)})
	n.answerLocked()
	s.logf("control: SSH login from %s on node %d ended by %s", remote, node, safetext.Bounded(by, 128))
	return nil
}
