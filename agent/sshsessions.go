package agent

import (
	"context"
	"errors"
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
		go func() {
			ans, err := a.node.ReportSSHSessions(rctx, controlws.SSHSessions{Logins: wireLogins(logins)})
			done <- result{ans, err}
		}()
		key := loginsKey(logins)
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
				if loginsKey(srv.Logins()) != key {
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

// wireLogins is logins as a report carries them (at most controlws.MaxSSHSessions).
func wireLogins(logins []sshd.LiveLogin) []controlws.SSHLogin {
	out := make([]controlws.SSHLogin, 0, min(len(logins), controlws.MaxSSHSessions))
	for _, l := range logins[:min(len(logins), controlws.MaxSSHSessions)] {
		out = append(out, controlws.SSHLogin{Remote: l.Remote, LocalUser: l.LocalUser, Started: l.Started,
			Sessions: l.Sessions, BytesIn: l.BytesIn, BytesOut: l.BytesOut})
	}
	return out
}

// loginsKey tells logins apart from another list when a login came, went or opened a session.
func loginsKey(logins []sshd.LiveLogin) string {
	keys := make([]string, 0, len(logins))
	for _, l := range logins {
		keys = append(keys, l.Remote.String()+"/"+strconv.Itoa(l.Sessions))
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
