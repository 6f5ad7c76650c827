package sshd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"golang.org/x/crypto/ssh"

	"tsconnect/internal/safetext"
	"tsconnect/policy/rules"
)

// Login is an authorized login: who connects, as which local account, and what the
// matched rule permits. Zero permission fields refuse: no extra environment variables,
// no forwarding of any kind.
type Login struct {
	LocalUser string // local account to run as
	Source    string // who connects, e.g. "alice@example.com on laptop (100.64.0.5)", for logs
	Rule      string // which rule allowed it, for logs

	// AcceptEnv lists patterns (* any run, ? one character) of client environment
	// variables passed to sessions beyond TERM, LANG and LC_*; LD_* never passes.
	AcceptEnv []string
	// AllowLocalForward permits -L (direct-tcpip channels).
	AllowLocalForward bool
	// AllowRemoteForward permits -R (tcpip-forward); ports below 1024 only for root.
	AllowRemoteForward bool
	// AllowAgentForward permits -A (auth-agent-req@openssh.com).
	AllowAgentForward bool
	// Record, if non-nil, says how the login's sessions are recorded (see Server.Record).
	Record *RecordSpec `json:",omitempty"`
}

// GrantAcceptDefaults sets what an "accept" rule permits unless the policy says
// otherwise: local, remote and agent forwarding.
func (l *Login) GrantAcceptDefaults() {
	l.AllowLocalForward, l.AllowRemoteForward, l.AllowAgentForward = true, true, true
}

// extLogin is the Permissions.Extensions key that carries the Login (as JSON) from the
// auth callback to the connection.
const extLogin = "tsconnect-login"

func (l *Login) extensions() map[string]string {
	b, _ := json.Marshal(l)
	return map[string]string{extLogin: string(b)}
}

func loginFromPermissions(p *ssh.Permissions) (*Login, error) {
	var l Login
	if p == nil || json.Unmarshal([]byte(p.Extensions[extLogin]), &l) != nil || l.LocalUser == "" {
		return nil, errors.New("sshd: authenticated connection carries no login")
	}
	return &l, nil
}

// permsDesc describes l's permissions for the log.
func (l *Login) permsDesc() string {
	var p []string
	if l.AllowLocalForward {
		p = append(p, "local-forward")
	}
	if l.AllowRemoteForward {
		p = append(p, "remote-forward")
	}
	if l.AllowAgentForward {
		p = append(p, "agent-forward")
	}
	return strings.Join(p, ",")
}

// authConfig builds the per-connection server configuration: identity decides in the "none"
// method (which every client tries first), keys never authorize.
// An accepted login is recorded on c at once, before the handshake completes, so a Revoke
// running meanwhile cannot miss it.
func (s *Server) authConfig(ctx context.Context, c *conn) *ssh.ServerConfig {
	var preAuth ssh.ServerPreAuthConn
	cfg := &ssh.ServerConfig{
		ServerVersion: s.Version,
		NoClientAuth:  true,
		PreAuthConnCallback: func(pc ssh.ServerPreAuthConn) {
			preAuth = pc
		},
		NoClientAuthCallback: func(meta ssh.ConnMetadata) (*ssh.Permissions, error) {
			req := &authRequest{c: c, pre: preAuth, remote: addrPort(meta.RemoteAddr()), user: meta.User()}
			gen := s.revoked.generation()
			perms, err := s.decide(ctx, req)
			if err != nil {
				return nil, err
			}
			if s.afterDecide != nil {
				s.afterDecide()
			}
			l := c.setLogin(perms)
			// A Revoke that started since the rules were read did not see this login: judge it
			// now by the newest one (a Revoke starting after this point sees it recorded).
			if keep, reason, ok := s.revoked.since(gen); ok && l != nil && !keep(c.remote, l) {
				c.clearLogin()
				s.logf("sshd: login verdict=revoke remote=%s source=%q local_user=%q rule=%q (revoked while deciding)",
					c.remote, l.Source, l.LocalUser, l.Rule)
				s.audit(Decision{Kind: DecisionRevoke, Remote: c.remote, User: req.user, LocalUser: l.LocalUser, Rule: l.Rule, Reason: reason})
				msg := "tsconnect: " + strings.TrimRight(reason, "\r\n")
				return nil, &ssh.BannerError{Err: errors.New(msg), Message: withNewline(msg)}
			}
			return perms, nil
		},
		// Offered keys always fail: listing "publickey" gives clients a method to try and
		// fail, so a refusal ends in "Permission denied" rather than a dropped connection.
		PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
			return nil, errors.New("sshd: keys are not used; access follows the overlay identity")
		},
	}
	if cfg.ServerVersion == "" {
		cfg.ServerVersion = DefaultVersion
	}
	for _, k := range s.HostKeys {
		cfg.AddHostKey(k)
	}
	return cfg
}

// decide runs Authorize for one "none" attempt and logs the verdict in one line.
func (s *Server) decide(ctx context.Context, req *authRequest) (*ssh.Permissions, error) {
	remote, user := req.remote, req.user
	var login *Login
	var err error
	if uerr := rules.CheckUserName(user); uerr != nil {
		err = fmt.Errorf("tsconnect: %s", rules.ReasonBadUser(uerr)) // before Authorize or any lookup
	} else if s.Authorize == nil {
		err = errors.New("tsconnect: SSH logins are not configured on this machine")
	} else {
		login, err = s.Authorize(ctx, req)
		if err == nil && (login == nil || login.LocalUser == "") {
			err = fmt.Errorf("tsconnect: no local account for %q", user)
		}
	}
	if err == nil {
		err = checkAccount(login.LocalUser)
	}
	src, rule, local := "", "", ""
	if login != nil {
		src, rule, local = login.Source, login.Rule, login.LocalUser
	}
	if err != nil {
		s.logf("sshd: login verdict=refuse remote=%s source=%q user=%q local_user=%q rule=%q reason=%q",
			remote, src, safetext.Bounded(user, 0), local, rule, err.Error())
		s.audit(Decision{Kind: DecisionReject, Remote: remote, User: user, LocalUser: local, Rule: rule, Reason: err.Error()})
		return nil, &ssh.BannerError{Err: err, Message: withNewline(err.Error())}
	}
	s.logf("sshd: login verdict=accept remote=%s source=%q user=%q local_user=%q rule=%q allow=%q accept_env=%q",
		remote, src, safetext.Bounded(user, 0), local, rule, login.permsDesc(), strings.Join(login.AcceptEnv, ","))
	s.audit(Decision{Kind: DecisionAccept, Remote: remote, User: user, LocalUser: local, Rule: rule})
	return &ssh.Permissions{Extensions: login.extensions()}, nil
}

// checkAccount reports, as a message for the client, why name cannot be logged into here.
func checkAccount(name string) error {
	acct, err := lookupAccount(name)
	if err != nil {
		return fmt.Errorf("tsconnect: no local account %q on this machine: %v", safetext.Bounded(name, 0), err)
	}
	if err := canRunAs(acct); err != nil {
		return fmt.Errorf("tsconnect: cannot log in as %q: %v", name, err)
	}
	return nil
}

// addrPort returns a's address and port, IPv4 unmapped; the zero value when a is not IP.
func addrPort(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case nil:
		return ap
	default:
		ap, _ = netip.ParseAddrPort(a.String())
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func withNewline(s string) string {
	if strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}
