package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/user"
	"strconv"
	"time"

	"tsconnect/controlws"
	"tsconnect/policy/rules"
	"tsconnect/sshd"
)

// authorize decides an SSH login from the overlay address of the connection: address →
// peer in the map (whose WireGuard allowed IPs are exactly its addresses, so the address
// names one node) → the SSH rules control compiled for this node. Refusals say why; sshd
// shows them as an auth banner before "Permission denied".
func (a *Agent) authorize(ctx context.Context, sreq sshd.AuthRequest) (*sshd.Login, error) {
	remote, req := sreq.Remote(), sreq.User()
	if err := rules.CheckUserName(req); err != nil {
		return nil, fmt.Errorf("tsconnect: %s", rules.ReasonBadUser(err))
	}
	nm := a.netMap()
	if nm == nil {
		return nil, errors.New("tsconnect: this node has no network map yet")
	}
	if err := a.checkMapAge(); err != nil {
		return nil, err
	}
	v, peer, err := verdict(nm, remote.Addr(), req, a.clock())
	if err != nil {
		return nil, err
	}
	src := describePeer(nm, peer)
	if err := noRecorder(v); err != nil {
		return nil, fmt.Errorf("tsconnect: %s: %w", src, err)
	}
	switch v.Action {
	case rules.Accept:
		return acceptLogin(v, src, peerOwner(nm, peer), peer.Name), nil
	case rules.Check:
		// Held until control says the source's user re-authenticated (check.go).
		return a.holdCheck(ctx, sreq, v, peer, src, peerOwner(nm, peer))
	}
	return nil, fmt.Errorf("tsconnect: %s: %s", src, v.Reason)
}

// acceptLogin is the login an accept verdict v (or a passed check) grants src (whose
// user is srcUser, on node srcNode): what the rule's acceptEnv lists, port and agent
// forwarding (the policy format has no switch for them yet, so accept means on), and
// the recording the rule asks for (record.go).
func acceptLogin(v rules.Verdict, src, srcUser, srcNode string) *sshd.Login {
	l := &sshd.Login{LocalUser: v.LocalUser, Source: src, Rule: v.Origin, AcceptEnv: v.AcceptEnv}
	l.GrantAcceptDefaults()
	if len(v.Recorders) > 0 {
		l.Record = &sshd.RecordSpec{Recorders: v.Recorders, Enforce: v.EnforceRecorder, Input: v.RecordInput,
			SrcUser: srcUser, SrcNode: srcNode}
	}
	return l
}

// noRecorder refuses a login its rule says must be recorded (enforceRecorder) when the
// rule names no recorder node that exists: fail closed, before any session.
func noRecorder(v rules.Verdict) error {
	if v.EnforceRecorder && len(v.Recorders) == 0 && (v.Action == rules.Accept || v.Action == rules.Check) {
		return errors.New("this login must be recorded (enforceRecorder), and its rule names no recorder node of this network")
	}
	return nil
}

// verdict evaluates a login from src as req against nm's SSH rules at now: a peer whose
// key expired (by this machine's clock) is refused whatever the rules say.
func verdict(nm *controlws.NetworkMap, src netip.Addr, req string, now time.Time) (rules.Verdict, controlws.Node, error) {
	peer, ok := nm.PeerByAddr(src)
	if !ok {
		return rules.Verdict{}, peer, fmt.Errorf("tsconnect: %s is not a node of this network (or may not reach this node)", src)
	}
	if err := expiredPeer(peer, now); err != nil {
		return rules.Verdict{}, peer, err
	}
	nr := &rules.NodeRules{SSH: nm.SSHRules}
	return nr.SSHVerdict(src, req, localAccount), peer, nil
}

// localAccount looks name up in the account database (NSS in a cgo build): the account's
// own name and uid, so the rules can tell a uid-0 account whatever it is called.
func localAccount(name string) (rules.Account, bool) {
	u, err := user.Lookup(name)
	if err != nil {
		return rules.Account{}, false
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return rules.Account{}, false
	}
	return rules.Account{Name: u.Username, UID: uint32(uid)}, true
}

// peerOwner is who p belongs to: its user's login name, or "tagged".
func peerOwner(nm *controlws.NetworkMap, p controlws.Node) string {
	if u, ok := nm.UserByID(p.User); ok && len(p.Tags) == 0 {
		return u.LoginName
	}
	return "tagged"
}

func describePeer(nm *controlws.NetworkMap, p controlws.Node) string {
	owner := peerOwner(nm, p)
	addr := ""
	if len(p.Addresses) > 0 {
		addr = p.Addresses[0].Addr().String()
	}
	return fmt.Sprintf("%s on %s (%s)", owner, p.Name, addr)
}

// onNetMap re-evaluates every live SSH session under the new map: a session survives only
// if its source is still a peer whose login still maps to the same local user with accept
// or check; the others get "Access revoked." and are cut (their whole process session).
// (Requested and local user are always the same name under the policy's user maps.)
//
// The sessions are re-evaluated so again when the soonest peer key of the map expires.
func (a *Agent) onNetMap(nm *controlws.NetworkMap) {
	a.notifyMap() // held check-mode logins re-evaluate too
	a.revokeSessions(nm)
	a.armPeerExpiry(nm)
}

// revokeSessions cuts the live SSH sessions that nm no longer allows now, and those of a
// login let in without enforced recording when its rule now enforces it (a login's
// sessions are recorded as its rule said at login).
func (a *Agent) revokeSessions(nm *controlws.NetworkMap) {
	now := a.clock()
	a.mu.Lock()
	srv := a.sshSrv
	a.mu.Unlock()
	if srv == nil {
		return
	}
	srv.Revoke(func(remote netip.AddrPort, l *sshd.Login) bool {
		v, _, err := verdict(nm, remote.Addr(), l.LocalUser, now)
		keep := err == nil && (v.Action == rules.Accept || v.Action == rules.Check) && v.LocalUser == l.LocalUser
		unrecorded := keep && v.EnforceRecorder && (l.Record == nil || !l.Record.Enforce)
		if !keep || unrecorded {
			reason := v.Reason
			switch {
			case err != nil:
				reason = err.Error()
			case unrecorded:
				reason = "its rule now enforces recording (enforceRecorder), and the login was let in without it"
				keep = false
			}
			a.logf("agent: revoking SSH session of %s from %s as %q: %s", l.Source, remote, l.LocalUser, reason)
			a.revocations.Inc()
		}
		return keep
	}, "Access revoked.")
}
