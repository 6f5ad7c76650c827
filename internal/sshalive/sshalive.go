// Package sshalive finds SSH connections whose other end has silently gone away: it asks
// keepalive@openssh.com at an interval and reports a connection that stops answering.
package sshalive

import (
	"time"

	"golang.org/x/crypto/ssh"
)

// Watch asks c's other end every interval whether it is there (keepalive@openssh.com,
// wanting a reply; any reply, even "unsupported", shows the path is alive) and calls lost
// once if an answer takes longer than two intervals; lost should close the connection.
// Watch returns when c ends or after calling lost.
func Watch(c ssh.Conn, every time.Duration, lost func()) {
	gone := make(chan struct{})
	go func() {
		c.Wait()
		close(gone)
	}()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-gone:
			return
		case <-t.C:
		}
		answered := make(chan error, 1)
		go func() {
			_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
			answered <- err
		}()
		wait := time.NewTimer(2 * every)
		select {
		case err := <-answered:
			wait.Stop()
			if err != nil {
				return
			}
		case <-wait.C:
			lost()
			return
		case <-gone:
			wait.Stop()
			return
		}
	}
}
