package sshd

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"tsconnect/internal/safetext"
)

// dialTimeout bounds connecting a -L forward to its destination.
const dialTimeout = 10 * time.Second

// prohibited is the refusal text for forwarding the login does not permit; the OpenSSH
// client prints it after "administratively prohibited".
const prohibited = "forwarding is not permitted for this login"

// directTCPIP is a "direct-tcpip" channel's payload (RFC 4254 7.2).
type directTCPIP struct {
	DestAddr string
	DestPort uint32
	OrigAddr string
	OrigPort uint32
}

// localForward serves a -L channel: connect to the destination from this machine and pipe.
func (c *conn) localForward(nch ssh.NewChannel) {
	var d directTCPIP
	if !c.loggedIn() || !c.login.AllowLocalForward {
		c.srv.logf("sshd: local forward refused remote=%s local_user=%q", c.remote, c.login.LocalUser)
		nch.Reject(ssh.Prohibited, prohibited)
		return
	}
	if ssh.Unmarshal(nch.ExtraData(), &d) != nil {
		nch.Reject(ssh.ConnectionFailed, "malformed direct-tcpip request")
		return
	}
	bad := checkText("the destination host", d.DestAddr, MaxHostLen)
	if bad == nil && d.DestAddr == "" {
		bad = errors.New("the destination host is empty")
	}
	if bad == nil && (d.DestPort == 0 || d.DestPort > 65535) {
		bad = fmt.Errorf("destination port %d is not in 1-65535", d.DestPort)
	}
	c.mu.Lock()
	if bad == nil && c.localFwd >= MaxLocalForwards {
		bad = fmt.Errorf("%d local forwards open on this connection, the most allowed", c.localFwd)
	}
	if bad == nil {
		c.localFwd++
	}
	c.mu.Unlock()
	if bad != nil {
		c.refuseRequest("local forward", bad)
		nch.Reject(ssh.ConnectionFailed, "tsconnect: "+bad.Error())
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer func() {
			c.mu.Lock()
			c.localFwd--
			c.mu.Unlock()
		}()
		dst := net.JoinHostPort(d.DestAddr, strconv.Itoa(int(d.DestPort)))
		nc, err := net.DialTimeout("tcp", dst, dialTimeout)
		if err != nil {
			nch.Reject(ssh.ConnectionFailed, "connect to "+dst+": "+err.Error())
			return
		}
		ch, reqs, err := nch.Accept()
		if err != nil {
			nc.Close()
			return
		}
		go ssh.DiscardRequests(reqs)
		pipe(nc, ch)
	}()
}

// tcpipForward is a "tcpip-forward" or "cancel-tcpip-forward" payload (RFC 4254 7.1).
type tcpipForward struct {
	BindAddr string
	BindPort uint32
}

// forwardedTCPIP is a "forwarded-tcpip" channel's payload (RFC 4254 7.2).
type forwardedTCPIP struct {
	Addr     string
	Port     uint32
	OrigAddr string
	OrigPort uint32
}

// remoteForwards are a connection's -R listeners, keyed by the client's bind address and port.
type remoteForwards struct {
	mu  sync.Mutex
	lns map[tcpipForward]net.Listener
	wg  sync.WaitGroup
}

// globalRequests answers the connection's global requests: -R forwarding where permitted,
// everything else (keepalives included) with failure, as RFC 4254 asks for unknown ones.
func (c *conn) globalRequests(reqs <-chan *ssh.Request) {
	for req := range reqs {
		ok, payload := false, []byte(nil)
		switch req.Type {
		case "tcpip-forward":
			ok, payload = c.remoteForward(req.Payload)
		case "cancel-tcpip-forward":
			var f tcpipForward
			if ssh.Unmarshal(req.Payload, &f) == nil {
				ok = c.fwd.cancel(f)
			}
		}
		if req.WantReply {
			req.Reply(ok, payload)
		}
	}
	c.fwd.closeAll()
}

// remoteForward opens a -R listener on this machine's loopback (as OpenSSH does without
// GatewayPorts). Ports below 1024 are refused unless the login is root.
func (c *conn) remoteForward(payload []byte) (bool, []byte) {
	var f tcpipForward
	l := c.login
	if ssh.Unmarshal(payload, &f) != nil || l == nil {
		return false, nil
	}
	refuse := func(why string) (bool, []byte) {
		c.srv.logf("sshd: remote forward refused remote=%s local_user=%q port=%d reason=%q", c.remote, l.LocalUser, f.BindPort, safetext.Bounded(why, 0))
		return false, nil
	}
	if err := checkText("the bind address", f.BindAddr, MaxHostLen); err != nil {
		return refuse(err.Error())
	}
	if f.BindPort > 65535 {
		return refuse(fmt.Sprintf("port %d is not in 0-65535", f.BindPort))
	}
	c.fwd.mu.Lock()
	n := len(c.fwd.lns)
	c.fwd.mu.Unlock()
	if n >= MaxRemoteForwards {
		return refuse(fmt.Sprintf("%d remote forwards on this connection, the most allowed", n))
	}
	if !c.loggedIn() || !l.AllowRemoteForward {
		return refuse(prohibited)
	}
	if f.BindPort != 0 && f.BindPort < 1024 {
		if acct, err := lookupAccount(l.LocalUser); err != nil || acct.UID != 0 {
			return refuse("privileged port for a non-root user")
		}
	}
	host := "127.0.0.1"
	if f.BindAddr == "::1" {
		host = "::1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(int(f.BindPort))))
	if err != nil {
		return refuse(err.Error())
	}
	port := uint32(ln.Addr().(*net.TCPAddr).Port)
	key := f
	c.fwd.mu.Lock()
	if c.fwd.lns == nil {
		c.fwd.lns = map[tcpipForward]net.Listener{}
	}
	if old := c.fwd.lns[key]; old != nil {
		old.Close()
	}
	c.fwd.lns[key] = ln
	c.fwd.wg.Add(1)
	c.fwd.mu.Unlock()
	go func() {
		defer c.fwd.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			orig := addrPort(nc.RemoteAddr())
			c.fwd.wg.Add(1)
			go func() {
				defer c.fwd.wg.Done()
				ch, reqs, err := c.sconn.OpenChannel("forwarded-tcpip", ssh.Marshal(forwardedTCPIP{
					Addr: f.BindAddr, Port: port, OrigAddr: orig.Addr().String(), OrigPort: uint32(orig.Port()),
				}))
				if err != nil {
					nc.Close()
					return
				}
				go ssh.DiscardRequests(reqs)
				pipe(nc, ch)
			}()
		}
	}()
	if f.BindPort == 0 {
		return true, ssh.Marshal(struct{ Port uint32 }{port})
	}
	return true, nil
}

func (r *remoteForwards) cancel(f tcpipForward) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	ln := r.lns[f]
	if ln == nil {
		return false
	}
	delete(r.lns, f)
	return ln.Close() == nil
}

// closeAll closes every listener and waits for their connections to end (they end with
// the SSH connection, which is closing when this runs).
func (r *remoteForwards) closeAll() {
	r.mu.Lock()
	for k, ln := range r.lns {
		ln.Close()
		delete(r.lns, k)
	}
	r.mu.Unlock()
	r.wg.Wait()
}
