package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"tsconnect/sshd"
)

// AcceptRiskLoseSSH is the --accept-risk value that lets `tsconnect set --ssh=false` run
// from inside one of the SSH sessions it ends.
const AcceptRiskLoseSSH = "lose-ssh"

// ErrInsideSSH refuses turning SSH off from inside an SSH session without accepting the risk.
var ErrInsideSSH = errors.New("this command runs inside an SSH session of this agent; turning SSH off would end it and you could lose access to this machine; rerun with --accept-risk=" + AcceptRiskLoseSSH + " to do it anyway")

// Prefs is the body of POST /localapi/v1/prefs: what `tsconnect set` changes.
type Prefs struct {
	SSH        *bool  `json:"ssh,omitempty"`
	AcceptRisk string `json:"acceptRisk,omitempty"`
}

// SSHEnabled reports whether the agent serves SSH now.
func (a *Agent) SSHEnabled() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sshSrv != nil
}

// SetSSH turns the SSH server on (listening on overlay port 22, host keys loaded or made)
// or off (every session ends, port 22 closes) and publishes the capability in the map.
func (a *Agent) SetSSH(ctx context.Context, on bool) error {
	a.sshToggle.Lock()
	defer a.sshToggle.Unlock()
	if on == a.SSHEnabled() {
		return nil
	}
	if !on {
		a.mu.Lock()
		srv := a.sshSrv
		a.sshSrv, a.sshLn = nil, nil
		a.mu.Unlock()
		srv.Close() // closes the listener, ends all sessions
		a.logf("agent: SSH turned off")
		return a.node.SetSSH(ctx, false, nil)
	}
	a.mu.Lock()
	keys := a.hostKeys
	a.mu.Unlock()
	if keys == nil {
		var err error
		if keys, err = sshd.LoadOrCreateHostKeys(a.cfg.StateDir); err != nil {
			return err
		}
		a.mu.Lock()
		a.hostKeys = keys
		a.mu.Unlock()
	}
	if err := a.startSSH(); err != nil {
		return err
	}
	a.logf("agent: SSH turned on")
	return a.node.SetSSH(ctx, true, sshd.AuthorizedKeys(keys))
}

// servePrefs applies Prefs for a caller; callerPID is the caller's process (SO_PEERCRED),
// 0 when unknown.
func (a *Agent) servePrefs(w http.ResponseWriter, r *http.Request, callerPID int) {
	var p Prefs
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
		httpError(w, http.StatusBadRequest, "bad prefs: "+err.Error())
		return
	}
	if p.SSH == nil {
		httpError(w, http.StatusBadRequest, "nothing to set")
		return
	}
	if *p.SSH || !a.SSHEnabled() {
		if err := a.SetSSH(r.Context(), *p.SSH); err != nil {
			httpError(w, http.StatusInternalServerError, err.Error())
			return
		}
		a.writeStatus(w)
		return
	}
	a.mu.Lock()
	srv := a.sshSrv
	a.mu.Unlock()
	inside := srv != nil && callerPID > 0 && srv.ProcessInSession(callerPID)
	if inside && p.AcceptRisk != AcceptRiskLoseSSH {
		httpError(w, http.StatusConflict, ErrInsideSSH.Error())
		return
	}
	if inside { // answer first: ending the sessions ends the caller too
		a.writeStatus(w)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		go func() {
			if err := a.SetSSH(context.Background(), false); err != nil {
				a.logf("agent: turning SSH off: %v", err)
			}
		}()
		return
	}
	if err := a.SetSSH(r.Context(), false); err != nil {
		httpError(w, http.StatusInternalServerError, fmt.Sprintf("turning SSH off: %v", err))
		return
	}
	a.writeStatus(w)
}
