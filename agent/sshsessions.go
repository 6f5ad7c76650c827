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

// reportLogins reports the SSH server's logins to control whenever they change (and when
// control's held answer comes back, at most every controlws.SSHSessionsHold, with fresh
// byte counts), and ends the logins an admin ended, until ctx ends.
func (a *Agent) reportLogins(ctx context.Context, srv *sshd.Server) {
	reportedNone := false
	for ctx.Err() == nil {
		logins := srv.Logins()
		if len(logins) == 0 && reportedNone {
			sleep(ctx, loginsCheck)
			continue
		}
		rctx, cancel := context.WithCancel(ctx)
		type result struct {
			a   *controlws.SSHSessionsAnswer
			err error
		}
		done := make(chan result, 1)
		wire := a.wireLogins(logins)
		go func() {
			ans, err := a.node.ReportSSHSessions(rctx, controlws.SSHSessions{Logins: wire})
			done <- result{ans, err}
		}()
		key := loginsKey(wire)
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
					reportedNone = len(logins) == 0
					for _, e := range r.a.End {
						srv.End(e.Remote, "Session ended by "+strings.TrimSuffix(e.By, ".")+".")
					}
				}
				break wait
			case <-t.C:
				if loginsKey(a.wireLogins(srv.Logins())) != key {
					cancel() // report the change now; control answers the old one
					<-done
					reportedNone = false
					break wait
				}
			}
		}
		t.Stop()
		cancel()
	}
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

// loginPath is the path to the peer at overlay address ip, nil when the map has none.
func (a *Agent) loginPath(nm *controlws.NetworkMap, ip netip.Addr) *controlws.LoginPath {
	if nm == nil {
		return nil
	}
	p, ok := nm.PeerByAddr(ip)
	if !ok {
		return nil
	}
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

// loginsKey tells logins apart from another list when a login came, went, opened a
// session or its path changed between direct and relayed.
func loginsKey(logins []controlws.SSHLogin) string {
	keys := make([]string, 0, len(logins))
	for _, l := range logins {
		k := l.Remote.String() + "/" + strconv.Itoa(l.Sessions)
		if l.Path != nil {
			k += "/" + l.Path.Direct.String()
		}
		keys = append(keys, k)
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
