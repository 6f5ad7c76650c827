package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"

	"tsconnect/agent"
	"tsconnect/internal/safetext"
)

func init() {
	register(&command{
		name:  "nc",
		usage: "HOST PORT",
		short: "connect stdin/stdout to HOST:PORT through the overlay",
		long: `Connects to PORT on HOST (a node name or overlay address) through the local agent
(see --socket) and copies stdin to the connection and the connection to stdout until both
directions end. Made for OpenSSH:

  ssh -o ProxyCommand='tsconnect nc %h %p' alice@server

Only root and the agent's own user may use the agent's socket.`,
		run: func(ctx context.Context, args []string) error {
			if len(args) != 2 {
				return errors.New("usage: tsconnect nc HOST PORT")
			}
			c, rd, err := dialThroughAgent(ctx, args[0], args[1])
			if err != nil {
				return err
			}
			defer c.Close()
			done := make(chan error, 1)
			go func() {
				_, err := io.Copy(c, os.Stdin)
				if uc, ok := c.(*net.UnixConn); ok {
					uc.CloseWrite()
				}
				done <- err
			}()
			_, err = io.Copy(os.Stdout, rd)
			return err // the far end is done: nothing more to say, whatever stdin does
		},
	})
}

// dialThroughAgent asks the agent to connect to host:port and returns the socket that now
// carries the connection, with a reader that starts with what was already buffered.
func dialThroughAgent(ctx context.Context, host, port string) (net.Conn, io.Reader, error) {
	path := socketPath()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, nil, fmt.Errorf("no agent at %s (is `tsconnect up` running? --socket or $TSCONNECT_SOCKET pick another): %w", path, err)
	}
	q := url.Values{"host": {host}, "port": {port}}
	req := "POST /localapi/v1/dial?" + q.Encode() + " HTTP/1.1\r\nHost: agent\r\nUpgrade: " + agent.DialUpgrade +
		"\r\nConnection: Upgrade\r\nContent-Length: 0\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("agent at %s: %w", path, err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("agent at %s closed the connection (only root and the agent's user may use it): %w", path, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		var e struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&e)
		c.Close()
		return nil, nil, fmt.Errorf("%s:%s: %s", host, port, safetext.Bounded(e.Error, 1024))
	}
	return c, br, nil
}
