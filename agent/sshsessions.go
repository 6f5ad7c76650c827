package agent

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"tsconnect/controlws"
	"tsconnect/sshd"
)

// How the agent keeps control told of its live SSH logins (for the console's Sessions page).
const (
	loginsCheck = time.Second      // how often it looks for logins that came or went
	loginsRetry = 2 * time.Second  // after a failed report
	loginsOld   = 10 * time.Minute // a control server without the message is asked again after this
)

// reportLogins reports the SSH server's logins (none while SSH is off) and the agent's paths
// to its active peers to control whenever they change (and when control's held answer comes
// back, at most every controlws.SSHSessionsHold, with fresh byte counts and round trips), and
// ends the logins an admin ended, until ctx ends.
func (a *Agent) reportLogins(ctx context.Context) {
	// idle is the key of the last report answered while it had no logins: with no logins
	// and the same peers' paths it is not sent again, except every SSHSessionsHold for
	// fresh round trips while it has peers (a control that predates peers answers at once).
	var idle *string
	var sent time.Time
	for ctx.Err() == nil {
		srv, logins := a.liveLogins()
		wire, peers := a.wireLogins(logins), a.wirePeers()
		key := reportKey(wire, peers)
		if len(logins) == 0 && idle != nil && *idle == key && (len(peers) == 0 || time.Since(sent) < controlws.SSHSessionsHold) {
			sleep(ctx, loginsCheck)
			continue
		}
		rctx, cancel := context.WithCancel(ctx)
		type result struct {
			a   *controlws.SSHSessionsAnswer
			err error
		}
		done := make(chan result, 1)
		sent = time.Now()
		go func() {
			ans, err := a.node.ReportSSHSessions(rctx, controlws.SSHSessions{Logins: wire, Peers: peers})
			done <- result{ans, err}
		}()
		t := time.NewTicker(loginsCheck)
	wait:
		for {
			select {
			case r := <-done:
				switch {
				case errors.Is(r.err, controlws.ErrUnsupported):
					sleep(ctx, loginsOld)
				case r.err != nil:
					sleep(ctx, loginsRetry)
				default:
					idle = nil
					if len(logins) == 0 {
						idle = &key
					}
					for _, e := range r.a.End {
						if srv == nil {
							break
						}
						srv.End(e.Remote, "Session ended by "+strings.TrimSuffix(e.By, ".")+".")
					}
				}
				break wait
			case <-t.C:
				if _, now := a.liveLogins(); reportKey(a.wireLogins(now), a.wirePeers()) != key {
					cancel() // report the change now; control answers the old one
					<-done
					idle = nil
					break wait
				}
			}
		}
		t.Stop()
		cancel()
	}
}

// liveLogins returns the SSH server and its logins; none while SSH is off.
func (a *Agent) liveLogins() (*sshd.Server, []sshd.LiveLogin) {
	a.mu.Lock()
	srv := a.sshSrv
	a.mu.Unlock()
	if srv == nil {
		return nil, nil
	}
	return srv, srv.Logins()
}

// wireLogins is logins as a report carries them (at most controlws.MaxSSHSessions), each
// with the path to its client when the map has the client.
func (a *Agent) wireLogins(logins []sshd.LiveLogin) []controlws.SSHLogin {
	nm := a.node.NetMap()
	out := make([]controlws.SSHLogin, 0, min(len(logins), controlws.MaxSSHSessions))
	for _, l := range logins[:min(len(logins), controlws.MaxSSHSessions)] {
		out = append(out, controlws.SSHLogin{Remote: l.Remote, LocalUser: l.LocalUser, Started: l.Started,
			Sessions: l.Sessions, BytesIn: l.BytesIn, BytesOut: l.BytesOut, Path: a.loginPath(nm, l.Remote.Addr())})
	}
	return out
}

// wirePeers is the agent's paths to the peers it exchanged traffic with within
// magicbind.ActiveFor (30 s), in map order, at most controlws.MaxPeerPaths; nil without
// direct paths (a relay-only agent does not track traffic per peer).
func (a *Agent) wirePeers() []controlws.PeerPath {
	nm := a.node.NetMap()
	if a.paths == nil || nm == nil {
		return nil
	}
	var out []controlws.PeerPath
	for _, p := range nm.Peers {
		if len(out) == controlws.MaxPeerPaths {
			break
		}
		if len(p.Addresses) == 0 || !a.paths.Path(p.Key).Active {
			continue
		}
		out = append(out, controlws.PeerPath{Peer: p.Addresses[0].Addr(), LoginPath: *a.pathTo(nm, p)})
	}
	return out
}

// loginPath is the path to the peer at overlay address ip, nil when the map has none.
func (a *Agent) loginPath(nm *controlws.NetworkMap, ip netip.Addr) *controlws.LoginPath {
	if nm == nil {
		return nil
	}
	p, ok := nm.PeerByAddr(ip)
	if !ok {
		return nil
	}
	return a.pathTo(nm, p)
}

// pathTo is the path to peer p as a report carries it.
func (a *Agent) pathTo(nm *controlws.NetworkMap, p controlws.Node) *controlws.LoginPath {
	pp := a.peerPath(nm, p)
	lp := &controlws.LoginPath{RegionCode: pp.RegionCode, RTTMillis: min(pp.RTTMillis, controlws.MaxRTTMillis)}
	if a.paths != nil {
		lp.Direct = a.paths.Path(p.Key).Direct
	}
	if lp.Validate() != nil { // a map's region code this report cannot carry
		lp.RegionCode = ""
	}
	return lp
}

// reportKey tells a report apart from another when a login came, went, opened a session
// or its path changed between direct and relayed, or a peer's path came, went or changed so.
func reportKey(logins []controlws.SSHLogin, peers []controlws.PeerPath) string {
	keys := make([]string, 0, len(logins)+len(peers))
	for _, l := range logins {
		k := l.Remote.String() + "/" + strconv.Itoa(l.Sessions)
		if l.Path != nil {
			k += "/" + l.Path.Direct.String()
		}
		keys = append(keys, k)
	}
	for _, p := range peers {
		keys = append(keys, "peer/"+p.Peer.String()+"/"+p.Direct.String())
	}
	slices.Sort(keys)
	return strings.Join(keys, " ")
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
