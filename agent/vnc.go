package agent

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// VNCPort is the overlay port the agent forwards to its VNC server (Config.VNC).
const VNCPort = 5900

// maxVNCConns bounds the forwarded connections open at once; more are closed at once.
const maxVNCConns = 16

// vncDialTimeout bounds connecting to the local VNC server.
const vncDialTimeout = 10 * time.Second

// startVNC forwards each connection to overlay port 5900 (that the packet filter let through:
// the policy's acls decide who may) to the VNC server at Config.VNC, until the node closes.
func (a *Agent) startVNC() error {
	ln, err := a.node.Listen(VNCPort)
	if err != nil {
		return err
	}
	go func() {
		var mu sync.Mutex
		open := 0
		for {
			c, err := ln.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					a.logf("agent: vnc: %v", err)
				}
				return
			}
			mu.Lock()
			full := open >= maxVNCConns
			if !full {
				open++
			}
			mu.Unlock()
			if full {
				a.logf("agent: vnc: refused %v: %d forwarded connections are open", c.RemoteAddr(), maxVNCConns)
				c.Close()
				continue
			}
			go func() {
				defer func() {
					mu.Lock()
					open--
					mu.Unlock()
				}()
				a.forwardVNC(c)
			}()
		}
	}()
	return nil
}

// forwardVNC copies between c and a new connection to the VNC server until either ends.
func (a *Agent) forwardVNC(c net.Conn) {
	defer c.Close()
	v, err := net.DialTimeout("tcp", a.cfg.VNC, vncDialTimeout)
	if err != nil {
		a.logf("agent: vnc: %v: %v", c.RemoteAddr(), err)
		return
	}
	defer v.Close()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			dst.Close()
		}
		done <- struct{}{}
	}
	go cp(v, c)
	go cp(c, v)
	<-done
	<-done
}
